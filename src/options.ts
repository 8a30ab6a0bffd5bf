import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Adapter, HistoryPolicy } from './adapters/adapter.js'
import { FST_REALTIME_INVALID_OPTION } from './errors.js'
import { agentEvents, type EventRegistry, registryProblem } from './events.js'
import { boolean, duration, fail, nonNegativeInt, plainObject, positiveInt } from './option-checks.js'
import { type OriginOption, type OriginPolicy, resolveOrigins } from './origins.js'
import { DEFAULT_ROOM_NAME_MAX_LENGTH, DEFAULT_ROOM_PATTERN, userRoom } from './protocol/rooms.js'
import { resolveServerApi, type ServerApiOptions, type ServerApiSettings } from './server-api-options.js'
import type { RealtimeConnection, RealtimeUser } from './types.js'

export type { ServerApiOptions, ServerApiSettings } from './server-api-options.js'

/**
 * What `authorize` is asked: may `user`, on `connection`, do `action` on `room`? `subscribe`: receive the room's
 * events. `cancel`: cancel the run `runId` of the room (a client's `cancel` message).
 */
export interface AuthorizeContext {
  readonly user: RealtimeUser
  readonly room: string
  readonly connection: RealtimeConnection
  /** `subscribe` for a client's subscribe; `publish` for a client's `publish` (asked once per connection and room). */
  readonly action: 'subscribe' | 'publish' | 'cancel'
  /** The run a `cancel` is for. */
  readonly runId?: string
}

export interface RealtimeOptions<E extends EventRegistry = EventRegistry> {
  /** Route of the WebSocket endpoint. Default `/ws`. */
  path?: string
  /** The server→client event registry (`defineEvents`). Default: `agentEvents`. */
  events?: E
  /**
   * Options for @fastify/jwt (at least `secret`), registered by the plugin. `secret` may be a function
   * `(request, token) => key` (e.g. a JWKS lookup by `token.header.kid`); in an `auth` refresh `request` is null.
   * Omit it when the app registered @fastify/jwt itself: the plugin then verifies with `app.jwt`.
   * `cookie: 'name'` also takes the token from that cookie when the upgrade carries none (a browser's HttpOnly
   * session): @fastify/cookie is registered unless the app did, and such an upgrade needs an allowed `Origin` (403).
   * With an app's @fastify/jwt, `jwt: { cookie }` alone names the cookie.
   */
  jwt?: {
    secret?: string | Buffer | { public: string | Buffer; private?: string | Buffer } | JwtSecretFunction
    cookie?: string
    [key: string]: unknown
  }
  /**
   * Decides who opens a connection, from the upgrade request: a session, an API key, anything. Return the user (with a
   * string or number `sub`), or null for 401. A thrown error with a 4xx `statusCode` is answered with it; any other
   * is logged and answered 500. When given, it replaces the JWT check of the upgrade (a `jwt` given too still serves
   * `auth` refreshes).
   */
  authenticate?: (request: FastifyRequest) => AuthenticatedUser | null | undefined | Promise<AuthenticatedUser | null | undefined>
  /**
   * The rooms a connection starts in, asked at every connect, after authentication (the user's own room, their
   * tenant's rooms). Each is joined before `ready`, with no `authorize`, like `join()`. Default: none.
   */
  subscriptions?: (user: RealtimeUser, request: FastifyRequest) => readonly string[] | Promise<readonly string[]>
  /** Accept a token in `?token=` (it is still removed from the URL before anything logs it). Default `false`. */
  allowQueryToken?: boolean
  /**
   * Decides every client subscription. Default: a client may subscribe only to `user:<sub>`.
   * Return `true` to allow; `false`, or a thrown error, denies with `forbidden`.
   */
  authorize?: (ctx: AuthorizeContext) => boolean | Promise<boolean>
  /**
   * Origins allowed to open the WebSocket from a browser (403 otherwise) and to read the plugin's own HTTP routes
   * (CORS with credentials, on those routes only: the app's other routes are left alone). Strings, RegExps, a list of
   * them, or a function of the origin. Default: `CORS_ORIGINS` (comma separated), else the dev origins
   * `http://localhost:*` and `http://127.0.0.1:*`. `'*'` allows any origin, and CORS then never allows credentials.
   * Requests without an `Origin` (not from a browser) are not checked. `cors: false` keeps the origin check but
   * sends no CORS headers.
   */
  cors?: { origin?: OriginOption } | false
  /** Protocol-level ping every `interval` ms; a client that has not answered within `timeout` ms is terminated. */
  heartbeat?: { interval?: number; timeout?: number }
  /**
   * The Server-Sent Events transport at `<path>/sse` (and `<path>/ticket`): `retry` is the reconnect delay the
   * stream asks of `EventSource` (ms, default 1000), `ticketTtl` how long a ticket may wait before it is redeemed (ms,
   * default 30 000). `false` serves WebSocket only.
   */
  sse?: { retry?: number; ticketTtl?: number } | false
  limits?: Partial<Limits>
  /** Validate `emit()` data against the registry at run time. Default `true`. */
  validate?: boolean
  /** Default timeout of `request()`, in ms. Default 30 000. */
  requestTimeout?: number
  /**
   * How long the server waits for an app hook's promise (`authorize`, `snapshot`, a `handle()` handler, …), in ms.
   * One still pending then is logged and its request answered `internal` (a subscribe fails as a whole; `authorize`
   * denies). Default 30 000.
   */
  hookTimeout?: number
  /**
   * Per-room history for resume: the last `size` events (default 100), each kept `ttl` ms (default 5 min).
   * `rooms(name)` overrides either for some rooms; `{ size: 0 }` turns history off for them.
   */
  history?: { size?: number; ttl?: number; rooms?: (room: string) => { size?: number; ttl?: number } | undefined }
  /**
   * Called when a subscriber cannot be resumed (a first subscribe, or a gap the history does not cover);
   * its result goes in `subscribed.data.snapshot` so the page can redraw the room's state.
   */
  snapshot?: (ctx: SnapshotContext) => unknown | Promise<unknown>
  /** Milliseconds a connection may stay open past its token's `exp` before it is closed with 4001. Default 0. */
  tokenExpiryGrace?: number
  /**
   * Carries events between instances and keeps history and presence. Default: the in-memory adapter (one process).
   * For several instances: `redisAdapter()` from `fastify-realtime/redis`. The plugin closes it on `app.close()`.
   */
  adapter?: Adapter
  /**
   * Presence for rooms: `true` for every room, or a function that picks the rooms. Members of such a room get
   * `join`/`leave` when a user's first connection arrives or their last one goes, and may ask `presence {room}`.
   * Default `false`.
   */
  presence?: boolean | ((room: string) => boolean)
  /** Data shown beside each user in presence (e.g. a display name from the token); JSON-serializable. */
  presenceInfo?: (ctx: PresenceInfoContext) => unknown
  /**
   * permessage-deflate for clients that offer it. Each message of `threshold` bytes or more (default 1024) is
   * compressed once, at `level` (zlib's default), and that one frame serves every recipient. Default `false`.
   */
  deflate?: boolean | { threshold?: number; level?: number }
  /**
   * Write coalescing: a frame for an idle connection goes out at once; while a burst lasts, the next frames of a
   * connection wait for the end of the event-loop turn (at most `windowMs`, default 2) or for `maxBytes` (default
   * 64 KiB) and go out in one write, each still its own WebSocket frame; while the burst goes on (turns less than
   * `windowMs` apart), even a connection's first frame of a turn waits. `false` writes every frame at once.
   * Default `true`.
   */
  coalesce?: boolean | { windowMs?: number; maxBytes?: number }
  /**
   * Frames that waited together are sent as one JSON array of envelopes instead of one frame each. Fewer frames for
   * the browser to handle; the client must accept arrays (`fastify-realtime/client` does). Arrays are not
   * compressed. Default `false`.
   */
  batch?: boolean
  /**
   * Prometheus metrics with prom-client (an optional peer dependency): `true` for a registry of their own, a
   * prom-client `Registry` to add them to, or `{ registry, prefix, route }`. Names start with `prefix` (default
   * `realtime_`); `route` (default `/metrics`) serves the registry unless the app already has that route, `false`
   * for none. Default `false`.
   */
  metrics?: boolean | MetricsRegistry | { registry?: MetricsRegistry; prefix?: string; route?: string | false }
  /**
   * Serve `app.realtime.asyncapi()` at `GET <path>/asyncapi.json`, to anyone who can reach the app: `true`, or the
   * document's `{ title, version, description }`. Default `false` (the method works either way).
   */
  asyncapi?: boolean | AsyncApiInfo
  /**
   * The HTTP server API under `<path>/api/`, for agents and workers outside this process (see `ServerApiOptions`).
   * Off unless given, with `keys` or `verify`.
   */
  serverApi?: ServerApiOptions
}

/** A verification key for a token, found from its decoded `header` and `payload` (a JWKS lookup). */
export type JwtSecretFunction = (
  request: FastifyRequest | null,
  token: { header: { kid?: string; alg?: string; [key: string]: unknown }; payload: Record<string, unknown> }
) => string | Buffer | Promise<string | Buffer>

/** What `authenticate` returns for a known user: a `sub` and any other claims the app wants on the connection. */
export interface AuthenticatedUser {
  sub: string | number
  [claim: string]: unknown
}

/** A prom-client `Registry` (typed loosely, so that apps without prom-client need not install its types). */
export interface MetricsRegistry {
  metrics(): Promise<string>
  readonly contentType: string
}

/** `metrics` as resolved: where the metrics go, their name prefix, and the route that serves them (or none). */
export interface MetricsSettings {
  readonly registry: MetricsRegistry | undefined
  readonly prefix: string
  readonly route: string | false
}

/** The `info` of the AsyncAPI document. */
export interface AsyncApiInfo {
  title?: string
  version?: string
  description?: string
}

/** `deflate` as resolved: messages of `threshold` bytes or more are compressed at `level`. */
export interface DeflateSettings {
  readonly threshold: number
  readonly level: number
}

/** Write coalescing as resolved. */
export interface CoalesceSettings {
  readonly windowMs: number
  readonly maxBytes: number
}

export interface PresenceInfoContext {
  readonly user: RealtimeUser
  readonly room: string
}

export interface SnapshotContext {
  readonly room: string
  readonly user: RealtimeUser
  readonly connection: RealtimeConnection
}

export interface Limits {
  /** Largest inbound frame in bytes; larger closes with 1009. Default 64 KiB. */
  maxPayload: number
  /** Sustained inbound messages per second per connection (token bucket). Default 20. */
  messagesPerSecond: number
  /** Bucket size: messages a connection may send at once. Default 40. */
  burst: number
  /** Rooms one connection may hold. Default 128. */
  roomsPerConnection: number
  /**
   * Frames one unfinished message may arrive in; one more closes the connection with 1008. Each fragment is kept as
   * its own buffer until the message ends, so without it a client could pin a few hundred bytes of server memory per
   * byte sent (one-byte fragments). Browsers send a message in one frame. Default 64.
   */
  maxFragments: number
  /** Longest room name. Default 255. */
  roomNameMaxLength: number
  /**
   * Pattern a room name must match. Default: letters and digits of any script, spaces and `:_-.@/|+=~,;!$&'()%#^`
   * (what identity providers put in user ids). Whatever the pattern, control characters are refused.
   */
  roomPattern: RegExp
  /** Invalid messages in a row before the connection is closed with 1008. Default 10. */
  maxInvalidMessages: number
  /** Rate-limited messages in a row before the connection is closed with 4029. Default 100. */
  maxRateLimited: number
  /** Bytes queued for one connection before it is closed as a slow consumer (4008). Default 1 MiB. */
  bufferedBytes: number
  /** Bytes queued for one connection past which volatile events to it are dropped. Default 256 KiB. */
  volatileBytes: number
  /** Connections one user (`sub`) may hold on this instance; one more gets HTTP 429 before the upgrade. Default 32. */
  connectionsPerUser: number
  /** Connections this instance holds at most; one more gets HTTP 503 before the upgrade. Default 50 000. */
  connections: number
}

const defaults = {
  path: '/ws',
  allowQueryToken: false,
  validate: true,
  requestTimeout: 30_000,
  hookTimeout: 30_000,
  tokenExpiryGrace: 0,
  history: { size: 100, ttl: 5 * 60_000 },
  heartbeat: { interval: 25_000, timeout: 10_000 },
  sse: { retry: 1000, ticketTtl: 30_000 },
  limits: {
    maxPayload: 64 * 1024,
    messagesPerSecond: 20,
    burst: 40,
    roomsPerConnection: 128,
    maxFragments: 64,
    roomNameMaxLength: DEFAULT_ROOM_NAME_MAX_LENGTH,
    roomPattern: DEFAULT_ROOM_PATTERN,
    maxInvalidMessages: 10,
    maxRateLimited: 100,
    bufferedBytes: 1024 * 1024,
    volatileBytes: 256 * 1024,
    connectionsPerUser: 32,
    connections: 50_000
  } satisfies Limits
}

export interface ResolvedOptions {
  readonly path: string
  readonly events: EventRegistry
  /** What the plugin registers @fastify/jwt with; undefined when the app's is used (or there is none). */
  readonly jwt: RealtimeOptions['jwt']
  /** The cookie a token may come from. */
  readonly jwtCookie: string | undefined
  readonly authenticate: RealtimeOptions['authenticate']
  readonly subscriptions: RealtimeOptions['subscriptions']
  readonly allowQueryToken: boolean
  readonly authorize: (ctx: AuthorizeContext) => boolean | Promise<boolean>
  readonly origins: OriginPolicy
  /** Whether the plugin's HTTP routes answer CORS (`cors: false` turns it off). */
  readonly cors: boolean
  readonly heartbeat: { readonly interval: number; readonly timeout: number }
  /** Undefined when `sse: false`. */
  readonly sse: { readonly retry: number; readonly ticketTtl: number } | undefined
  readonly limits: Readonly<Limits>
  readonly validate: boolean
  readonly requestTimeout: number
  readonly hookTimeout: number
  readonly history: { readonly size: number; readonly ttl: number; readonly forRoom: (room: string) => HistoryPolicy }
  readonly snapshot: ((ctx: SnapshotContext) => unknown) | undefined
  readonly tokenExpiryGrace: number
  readonly adapter: Adapter | undefined
  /** The app's presence predicate as given: a room has presence when it answers `true` (callers go through `callHookSync`). */
  readonly presence: (room: string) => unknown
  readonly presenceInfo: ((ctx: PresenceInfoContext) => unknown) | undefined
  readonly deflate: DeflateSettings | undefined
  readonly coalesce: CoalesceSettings | undefined
  readonly batch: boolean
  readonly metrics: MetricsSettings | undefined
  readonly asyncapi: { readonly route: boolean; readonly info: AsyncApiInfo }
  readonly serverApi: ServerApiSettings | undefined
}

/** Only `user:<sub>` is allowed when the application gives no `authorize`: deny is the default. */
export const ownRoomOnly = ({ user, room }: AuthorizeContext): boolean => room === userRoom(user.sub)

function resolveHistory(value: unknown): ResolvedOptions['history'] {
  const given = plainObject('history', value)
  const size = nonNegativeInt('history.size', given.size, defaults.history.size)
  const ttl = duration('history.ttl', given.ttl, defaults.history.ttl)
  const rooms = given.rooms
  if (rooms !== undefined && typeof rooms !== 'function') fail('history.rooms', 'a function', rooms)
  const base: HistoryPolicy = Object.freeze({ size, ttl })
  const forRoom =
    rooms === undefined
      ? () => base
      : (room: string): HistoryPolicy => {
          const o = plainObject(`history.rooms("${room}")`, (rooms as (r: string) => unknown)(room) ?? undefined)
          return {
            size: nonNegativeInt(`history.rooms("${room}").size`, o.size, size),
            ttl: duration(`history.rooms("${room}").ttl`, o.ttl, ttl)
          }
        }
  return Object.freeze({ size, ttl, forRoom })
}

function resolveSse(value: unknown): ResolvedOptions['sse'] {
  if (value === false) return undefined
  const sse = plainObject('sse', value)
  return Object.freeze({
    retry: duration('sse.retry', sse.retry, defaults.sse.retry),
    ticketTtl: duration('sse.ticketTtl', sse.ticketTtl, defaults.sse.ticketTtl)
  })
}

const LIMIT_KEYS = Object.keys(defaults.limits) as (keyof Limits)[]

function resolveLimits(value: unknown): Limits {
  const given = plainObject('limits', value)
  for (const key of Object.keys(given)) {
    if (!LIMIT_KEYS.includes(key as keyof Limits)) {
      throw new FST_REALTIME_INVALID_OPTION(`unknown option "limits.${key}" (known: ${LIMIT_KEYS.join(', ')})`)
    }
  }
  const d = defaults.limits
  const pattern = given.roomPattern ?? d.roomPattern
  if (!(pattern instanceof RegExp)) fail('limits.roomPattern', 'a RegExp', pattern)
  return {
    maxPayload: positiveInt('limits.maxPayload', given.maxPayload, d.maxPayload),
    messagesPerSecond: positiveInt('limits.messagesPerSecond', given.messagesPerSecond, d.messagesPerSecond),
    burst: positiveInt('limits.burst', given.burst, d.burst),
    roomsPerConnection: positiveInt('limits.roomsPerConnection', given.roomsPerConnection, d.roomsPerConnection),
    maxFragments: positiveInt('limits.maxFragments', given.maxFragments, d.maxFragments),
    roomNameMaxLength: positiveInt('limits.roomNameMaxLength', given.roomNameMaxLength, d.roomNameMaxLength),
    roomPattern: pattern,
    maxInvalidMessages: positiveInt('limits.maxInvalidMessages', given.maxInvalidMessages, d.maxInvalidMessages),
    maxRateLimited: positiveInt('limits.maxRateLimited', given.maxRateLimited, d.maxRateLimited),
    bufferedBytes: positiveInt('limits.bufferedBytes', given.bufferedBytes, d.bufferedBytes),
    volatileBytes: positiveInt('limits.volatileBytes', given.volatileBytes, d.volatileBytes),
    connectionsPerUser: positiveInt('limits.connectionsPerUser', given.connectionsPerUser, d.connectionsPerUser),
    connections: positiveInt('limits.connections', given.connections, d.connections)
  }
}

const KNOWN = new Set([
  'path',
  'events',
  'jwt',
  'authenticate',
  'subscriptions',
  'allowQueryToken',
  'authorize',
  'cors',
  'heartbeat',
  'sse',
  'limits',
  'validate',
  'requestTimeout',
  'hookTimeout',
  'history',
  'snapshot',
  'tokenExpiryGrace',
  'adapter',
  'presence',
  'presenceInfo',
  'deflate',
  'coalesce',
  'batch',
  'metrics',
  'asyncapi',
  'serverApi'
])

const ADAPTER_METHODS = [
  'init',
  'publish',
  'subscribe',
  'unsubscribe',
  'history',
  'presenceAdd',
  'presenceRemove',
  'presenceRefresh',
  'presenceList',
  'stateRead',
  'stateWrite',
  'stateClaim',
  'stateTake'
] as const

function resolveAdapter(value: unknown): Adapter | undefined {
  if (value === undefined) return undefined
  const missing = ADAPTER_METHODS.filter((m) => typeof (value as Record<string, unknown> | null)?.[m] !== 'function')
  if (missing.length > 0) fail('adapter', `an adapter (missing ${missing.join(', ')})`, value)
  return value as Adapter
}

function resolveDeflate(value: unknown): DeflateSettings | undefined {
  if (value === undefined || value === false) return undefined
  const given = value === true ? {} : plainObject('deflate', value)
  const level = given.level ?? -1
  if (typeof level !== 'number' || !Number.isInteger(level) || level < -1 || level > 9)
    fail('deflate.level', 'an integer from -1 to 9', level)
  return Object.freeze({ threshold: nonNegativeInt('deflate.threshold', given.threshold, 1024), level })
}

function resolveCoalesce(value: unknown): CoalesceSettings | undefined {
  if (value === false) return undefined
  const given = value === undefined || value === true ? {} : plainObject('coalesce', value)
  return Object.freeze({
    windowMs: duration('coalesce.windowMs', given.windowMs, 2),
    maxBytes: positiveInt('coalesce.maxBytes', given.maxBytes, 64 * 1024)
  })
}

const isRegistry = (value: unknown): boolean =>
  typeof (value as { metrics?: unknown } | null)?.metrics === 'function' &&
  typeof (value as { contentType?: unknown }).contentType === 'string'

function resolveMetrics(value: unknown): MetricsSettings | undefined {
  if (value === undefined || value === false) return undefined
  const given = value === true ? {} : isRegistry(value) ? { registry: value } : plainObject('metrics', value)
  const { registry, prefix = 'realtime_', route = '/metrics' } = given as Record<string, unknown>
  if (registry !== undefined && !isRegistry(registry)) fail('metrics.registry', 'a prom-client Registry', registry)
  if (typeof prefix !== 'string' || !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))
    fail('metrics.prefix', 'a Prometheus metric name prefix', prefix)
  if (route !== false && (typeof route !== 'string' || !route.startsWith('/')))
    fail('metrics.route', 'false or a path starting with "/"', route)
  return Object.freeze({ registry: registry as MetricsSettings['registry'], prefix, route: route as string | false })
}

function resolveAsyncApi(value: unknown): ResolvedOptions['asyncapi'] {
  if (value === undefined || typeof value === 'boolean') return Object.freeze({ route: value === true, info: {} })
  const given = plainObject('asyncapi', value)
  for (const key of Object.keys(given)) {
    if (!['title', 'version', 'description'].includes(key)) {
      throw new FST_REALTIME_INVALID_OPTION(`unknown option "asyncapi.${key}" (known: title, version, description)`)
    }
    if (typeof given[key] !== 'string') fail(`asyncapi.${key}`, 'a string', given[key])
  }
  return Object.freeze({ route: true, info: Object.freeze({ ...given }) as AsyncApiInfo })
}

function resolvePresence(value: unknown): (room: string) => unknown {
  if (value === undefined || typeof value === 'boolean') return () => value === true
  if (typeof value !== 'function') fail('presence', 'a boolean or a function of the room', value)
  return value as (room: string) => unknown
}

type Auth = Pick<ResolvedOptions, 'jwt' | 'jwtCookie' | 'authenticate' | 'subscriptions'>

/** `jwt`, `authenticate` and `subscriptions`: some way to know the user is required, and one @fastify/jwt at most. */
function resolveAuth(opts: Record<string, unknown>, hostHasJwt: boolean, log: FastifyBaseLogger | undefined): Auth {
  const { authenticate, subscriptions } = opts as Pick<RealtimeOptions, 'authenticate' | 'subscriptions'>
  if (authenticate !== undefined && typeof authenticate !== 'function') fail('authenticate', 'a function of the request', authenticate)
  if (subscriptions !== undefined && typeof subscriptions !== 'function') {
    fail('subscriptions', 'a function of the user and the request', subscriptions)
  }
  if (opts.jwt === undefined) {
    if (!hostHasJwt && authenticate === undefined) {
      throw new FST_REALTIME_INVALID_OPTION(
        'option "jwt" is required: pass { secret }, register @fastify/jwt first, or give "authenticate"'
      )
    }
    return { jwt: undefined, jwtCookie: undefined, authenticate, subscriptions }
  }
  const { cookie, ...jwt } = plainObject('jwt', opts.jwt)
  if (cookie !== undefined && (typeof cookie !== 'string' || cookie === '')) fail('jwt.cookie', 'a cookie name', cookie)
  const jwtCookie = cookie as string | undefined
  if (hostHasJwt) {
    if (Object.keys(jwt).length > 0) {
      throw new FST_REALTIME_INVALID_OPTION(
        'option "jwt" conflicts with the @fastify/jwt already registered: omit "jwt" (or give only jwt.cookie) to verify with app.jwt'
      )
    }
    return { jwt: undefined, jwtCookie, authenticate, subscriptions }
  }
  const { secret } = jwt
  if (
    !(typeof secret === 'string' && secret.length > 0) &&
    !Buffer.isBuffer(secret) &&
    typeof secret !== 'function' &&
    !(typeof secret === 'object' && secret !== null)
  ) {
    fail('jwt.secret', 'a non-empty string, a Buffer, { public, private } keys or a function of the token', secret)
  }
  if (typeof secret === 'string' && secret.length < 32) {
    log?.warn('fastify-realtime: jwt.secret is shorter than 32 characters; use a long random secret in production')
  }
  return { jwt: jwt as RealtimeOptions['jwt'], jwtCookie, authenticate, subscriptions }
}

/**
 * Checks every option and fills in the defaults. Throws `FST_REALTIME_INVALID_OPTION` naming the
 * option and the expected type, so `app.ready()` rejects before anything listens.
 */
export function resolveOptions(
  input: unknown,
  env: NodeJS.ProcessEnv = process.env,
  hostHasJwt = false,
  log?: FastifyBaseLogger
): ResolvedOptions {
  const opts = plainObject('options', input)
  for (const key of Object.keys(opts)) {
    if (!KNOWN.has(key)) throw new FST_REALTIME_INVALID_OPTION(`unknown option "${key}"`)
  }

  const path = opts.path ?? defaults.path
  if (typeof path !== 'string' || !path.startsWith('/')) fail('path', 'a string starting with "/"', path)

  const events = opts.events ?? agentEvents
  const problem = registryProblem(events)
  if (problem !== undefined) throw new FST_REALTIME_INVALID_OPTION(`option "events": ${problem}`)

  const auth = resolveAuth(opts, hostHasJwt, log)

  const authorize = opts.authorize ?? ownRoomOnly
  if (typeof authorize !== 'function') fail('authorize', 'a function', authorize)

  const origins = resolveOrigins(opts.cors === false ? undefined : plainObject('cors', opts.cors).origin, env.CORS_ORIGINS)
  if (auth.jwtCookie !== undefined && origins.everyOrigin) {
    throw new FST_REALTIME_INVALID_OPTION(
      'option "jwt.cookie" needs allowed origins: with cors.origin "*" any site could connect with the user\'s cookie'
    )
  }

  if (opts.snapshot !== undefined && typeof opts.snapshot !== 'function') fail('snapshot', 'a function', opts.snapshot)
  if (opts.presenceInfo !== undefined && typeof opts.presenceInfo !== 'function') fail('presenceInfo', 'a function', opts.presenceInfo)

  const hb = plainObject('heartbeat', opts.heartbeat)
  const heartbeat = {
    interval: duration('heartbeat.interval', hb.interval, defaults.heartbeat.interval),
    timeout: duration('heartbeat.timeout', hb.timeout, defaults.heartbeat.timeout)
  }

  return Object.freeze({
    path,
    events: events as EventRegistry,
    ...auth,
    allowQueryToken: boolean('allowQueryToken', opts.allowQueryToken, defaults.allowQueryToken),
    authorize: authorize as ResolvedOptions['authorize'],
    origins,
    cors: opts.cors !== false,
    heartbeat: Object.freeze(heartbeat),
    sse: resolveSse(opts.sse),
    limits: Object.freeze(resolveLimits(opts.limits)),
    validate: boolean('validate', opts.validate, defaults.validate),
    requestTimeout: duration('requestTimeout', opts.requestTimeout, defaults.requestTimeout),
    hookTimeout: duration('hookTimeout', opts.hookTimeout, defaults.hookTimeout),
    history: resolveHistory(opts.history),
    snapshot: opts.snapshot as ResolvedOptions['snapshot'],
    tokenExpiryGrace: nonNegativeInt('tokenExpiryGrace', opts.tokenExpiryGrace, defaults.tokenExpiryGrace),
    adapter: resolveAdapter(opts.adapter),
    presence: resolvePresence(opts.presence),
    presenceInfo: opts.presenceInfo as ResolvedOptions['presenceInfo'],
    deflate: resolveDeflate(opts.deflate),
    coalesce: resolveCoalesce(opts.coalesce),
    batch: boolean('batch', opts.batch, false),
    metrics: resolveMetrics(opts.metrics),
    asyncapi: resolveAsyncApi(opts.asyncapi),
    serverApi: resolveServerApi(opts.serverApi)
  })
}
