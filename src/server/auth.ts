import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import {
  FST_REALTIME_BAD_SUBPROTOCOL,
  FST_REALTIME_CLOSING,
  FST_REALTIME_FORBIDDEN_ORIGIN,
  FST_REALTIME_SERVER_FULL,
  FST_REALTIME_TOO_MANY_CONNECTIONS
} from '../errors.js'
import type { JwtSecretFunction, ResolvedOptions } from '../options.js'
import { BEARER_PREFIX, SUBPROTOCOL } from '../protocol/constants.js'
import type { RealtimeUser } from '../types.js'
import { type ConnectionSlots, kSlot, type RequestWithSlot } from './caps.js'
import { createIdentify, originAllowed } from './identity.js'

/** The token taken out of a `?token=` upgrade URL before Fastify logs the URL. */
export const kQueryToken = Symbol('fastify-realtime.queryToken')
/** The verified user, handed from the `preValidation` hook to the WebSocket handler. */
export const kUser = Symbol('fastify-realtime.user')

export type RawWithToken = IncomingMessage & { [kQueryToken]?: string }
export type RequestWithUser = FastifyRequest & { [kUser]?: RealtimeUser }

/**
 * Runs before @fastify/websocket and Fastify see a request or an upgrade to `path`: removes the query parameter `name`
 * and keeps its value aside under `into`, so the request URL, and every log line with it, never holds it.
 */
export function redactQueryParam(path: string, name: string, into: symbol) {
  const key = routeKey(path)
  return (req: IncomingMessage): void => {
    // A server request always has a url; only a hand-made IncomingMessage lacks one.
    const url = req.url as string
    const q = url.indexOf('?')
    if (q === -1 || routeKey(url.slice(0, q)) !== key) return
    const params = new URLSearchParams(url.slice(q + 1))
    const value = params.get(name)
    if (value === null) return
    params.delete(name)
    ;(req as IncomingMessage & Record<symbol, string>)[into] = value
    const rest = params.toString()
    req.url = rest === '' ? url.slice(0, q) : `${url.slice(0, q)}?${rest}`
  }
}

/** The `token` of a query string (a browser's WebSocket cannot send headers), kept out of the logged URL. */
export const redactQueryToken = (path: string) => redactQueryParam(path, 'token', kQueryToken)

/**
 * A path as a router might match it: percent-decoded, repeated and trailing slashes folded, lower-cased. It decides
 * where a token must be hidden, so matching more spellings than the router does is safe; matching fewer is not.
 */
export function routeKey(path: string): string {
  let decoded = path
  try {
    decoded = decodeURIComponent(path)
  } catch {
    // A malformed escape: compare it as written.
  }
  const folded = decoded.replace(/\/{2,}/g, '/').toLowerCase()
  return folded.length > 1 && folded.endsWith('/') ? folded.slice(0, -1) : folded
}

/** Node joins repeated `Sec-WebSocket-Protocol` headers into one comma-separated string. */
export function offeredProtocols(header: string | undefined): string[] {
  if (header === undefined) return []
  return header
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)
}

const JWT_REASONS: Readonly<Record<string, readonly [reason: string, label: string]>> = {
  FAST_JWT_EXPIRED: ['Token expired', 'expired'],
  FAST_JWT_INACTIVE: ['Token not yet valid', 'not_yet_valid'],
  FAST_JWT_MALFORMED: ['Malformed token', 'malformed']
}

/** A refused token or upgrade: `message` is fit for the client and the log, `label` names the reason in metrics. */
export class Refusal extends Error {
  constructor(
    message: string,
    readonly label: string
  ) {
    super(message)
  }
}

/** Why a token was refused, in words fit for the client and the log (never the token itself). */
export function describeJwtError(err: unknown): Refusal {
  const [reason, label] = JWT_REASONS[String((err as { code?: unknown } | null)?.code)] ?? ['Invalid token', 'invalid']
  return new Refusal(reason, label)
}

/** Verifies a token and checks it names a user; `request` is the upgrade's (absent for an `auth` refresh). */
export type Verifier = (token: string, request?: FastifyRequest) => Promise<RealtimeUser>

/**
 * Verifies a token with the app's @fastify/jwt and checks it names a user. With a `secret` function (a JWKS lookup),
 * the key is asked for each token: @fastify/jwt's own `verify()` calls such a function only from `request.jwtVerify()`,
 * which reads no subprotocol and no query, so the key is found here and handed to `verify()`.
 */
export function createVerifier(fastify: FastifyInstance, secret: unknown): Verifier {
  if (!fastify.hasDecorator('jwt')) {
    return async () => {
      throw new Refusal('Token refresh is not available: this server authenticates connections with its authenticate hook', 'no_jwt')
    }
  }
  const jwt = fastify.jwt as unknown as {
    verify(token: string, options?: object): unknown
    decode(token: string, options: object): { header: object; payload: object } | null
  }
  const keyOf = typeof secret === 'function' ? (secret as JwtSecretFunction) : undefined
  return async (token, request) => {
    let payload: unknown
    try {
      if (keyOf === undefined) payload = await jwt.verify(token)
      else {
        const decoded = jwt.decode(token, { complete: true }) as Parameters<JwtSecretFunction>[1]
        payload = await jwt.verify(token, { key: await keyOf(request ?? null, decoded) })
      }
    } catch (err) {
      throw describeJwtError(err)
    }
    return namedUser(payload, 'Token has no subject (sub)')
  }
}

/** The user a verified token or `authenticate` gave: `sub` is required, and becomes a string. */
export function namedUser(value: unknown, missing: string): RealtimeUser {
  const sub = (value as { sub?: unknown } | null)?.sub
  if ((typeof sub !== 'string' || sub === '') && typeof sub !== 'number') throw new Refusal(missing, 'no_subject')
  return { ...(value as object), sub: String(sub) } as RealtimeUser
}

/** What the checks ask of the instance: is it closing; and they tell it of a refused token or origin. */
export interface UpgradeGate {
  readonly closing: boolean
  /** A request was refused for a token or an origin (`label` names why). */
  refused(label: string): void
}

/**
 * The `preValidation` hook of the routes that open a connection (the WebSocket upgrade, an SSE stream) and of those
 * that act for one (a POST to a stream, a ticket): closing → 503, full → 503, foreign `Origin` → 403, subprotocols
 * without `realtime.v1` → 400, no valid token → 401, too many connections for the user → 429. Only then does the
 * route go on. `slots` are the caps of a request that opens a connection; one that opens none passes the same checks
 * without them.
 */
export function createAuthenticate(opts: ResolvedOptions, verify: Verifier, gate: UpgradeGate, slots?: ConnectionSlots) {
  const { connections, connectionsPerUser } = opts.limits
  const identify = createIdentify(opts, verify)
  return async function authenticate(request: FastifyRequest): Promise<void> {
    try {
      await check(request)
    } catch (err) {
      ;(request as RequestWithSlot)[kSlot]?.release()
      // Token and origin refusals carry a label; a closing or full server, or a bad subprotocol, is not one of them.
      const { label } = err as { label?: string }
      if (label !== undefined) gate.refused(label)
      throw err
    }
  }

  async function check(request: FastifyRequest): Promise<void> {
    if (gate.closing) throw new FST_REALTIME_CLOSING()
    // Before any token work: a full server should cost as little as possible. The place is held from here, across
    // every await, until the connection is in the registry (`Hub.admit`) or the upgrade fails.
    const slot = slots === undefined ? null : slots.take()
    if (slot === undefined) {
      request.log.warn({ connections }, 'realtime upgrade refused: connection limit reached')
      throw new FST_REALTIME_SERVER_FULL()
    }
    if (slot !== null) {
      ;(request as RequestWithSlot)[kSlot] = slot
      // An injected request (`injectWS`) has no socket: its place is given back by the route's onError or `admit`.
      request.raw.socket?.once('close', slot.release)
    }
    const origin = request.headers.origin
    if (origin !== undefined && !(await originAllowed(opts.origins, origin, request))) {
      request.log.info({ origin }, 'realtime upgrade refused: origin not allowed')
      throw Object.assign(new FST_REALTIME_FORBIDDEN_ORIGIN(origin), { label: 'origin' })
    }
    const protocols = offeredProtocols(request.headers['sec-websocket-protocol'])
    if (protocols.length > 0 && !protocols.includes(SUBPROTOCOL)) {
      throw new FST_REALTIME_BAD_SUBPROTOCOL(`Offer the "${SUBPROTOCOL}" subprotocol`)
    }
    const user = await identify(request, protocols)
    if (slot !== null && !slot.forUser(user.sub)) {
      request.log.info({ userId: user.sub, connectionsPerUser }, 'realtime upgrade refused: too many connections for the user')
      throw new FST_REALTIME_TOO_MANY_CONNECTIONS(connectionsPerUser)
    }
    ;(request as RequestWithUser)[kUser] = user
  }
}

/** Selects `realtime.v1` on our path, never a `bearer.` token; other paths keep the previous choice. */
export function selectProtocol(path: string, previous?: ((protocols: Set<string>, req: IncomingMessage) => string | false) | null) {
  const key = routeKey(path)
  return (protocols: Set<string>, req: IncomingMessage): string | false => {
    // On our path the preValidation hook has already refused an upgrade that does not offer realtime.v1.
    if (routeKey((req.url as string).split('?', 1)[0] as string) === key) return SUBPROTOCOL
    // ws defaults handleProtocols to null, not undefined.
    if (typeof previous === 'function') {
      const chosen = previous(protocols, req)
      return typeof chosen === 'string' && chosen.startsWith(BEARER_PREFIX) ? false : chosen
    }
    // ws's own default is the first offered protocol; a bearer token is never one to echo.
    for (const protocol of protocols) if (!protocol.startsWith(BEARER_PREFIX)) return protocol
    return false
  }
}
