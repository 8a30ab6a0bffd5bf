import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import {
  FST_REALTIME_BAD_SUBPROTOCOL,
  FST_REALTIME_CLOSING,
  FST_REALTIME_FORBIDDEN_ORIGIN,
  FST_REALTIME_SERVER_FULL,
  FST_REALTIME_TOO_MANY_CONNECTIONS,
  FST_REALTIME_UNAUTHORIZED
} from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import { BEARER_PREFIX, SUBPROTOCOL } from '../protocol/constants.js'
import type { RealtimeUser } from '../types.js'

/** The token taken out of a `?token=` upgrade URL before Fastify logs the URL. */
const kQueryToken = Symbol('fastify-realtime.queryToken')
/** The verified user, handed from the `preValidation` hook to the WebSocket handler. */
export const kUser = Symbol('fastify-realtime.user')

type RawWithToken = IncomingMessage & { [kQueryToken]?: string }
export type RequestWithUser = FastifyRequest & { [kUser]?: RealtimeUser }

/**
 * Runs before @fastify/websocket and Fastify see a request or an upgrade to our path: removes `token` from
 * its query string and keeps it aside, so the request URL, and every log line with it, holds no token.
 */
export function redactQueryToken(path: string) {
  const key = routeKey(path)
  return (req: RawWithToken): void => {
    // A server request always has a url; only a hand-made IncomingMessage lacks one.
    const url = req.url as string
    const q = url.indexOf('?')
    if (q === -1 || routeKey(url.slice(0, q)) !== key) return
    const params = new URLSearchParams(url.slice(q + 1))
    const token = params.get('token')
    if (token === null) return
    params.delete('token')
    req[kQueryToken] = token
    const rest = params.toString()
    req.url = rest === '' ? url.slice(0, q) : `${url.slice(0, q)}?${rest}`
  }
}

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

/** Verifies a token with the app's @fastify/jwt and checks it names a user. */
export function createVerifier(fastify: FastifyInstance): (token: string) => Promise<RealtimeUser> {
  return async (token) => {
    let payload: unknown
    try {
      payload = await (fastify.jwt.verify as (t: string) => unknown)(token)
    } catch (err) {
      throw describeJwtError(err)
    }
    const sub = (payload as { sub?: unknown } | null)?.sub
    if ((typeof sub !== 'string' || sub === '') && typeof sub !== 'number') throw new Refusal('Token has no subject (sub)', 'no_subject')
    return { ...(payload as object), sub: String(sub) } as RealtimeUser
  }
}

/**
 * The `preValidation` hook of the WebSocket route: closing → 503, foreign `Origin` → 403, subprotocols
 * without `realtime.v1` → 400, no valid token → 401. Only then does the upgrade happen.
 */
/** What the upgrade hook asks of the instance: is it closing, and how many connections does it (and a user) hold. */
export interface UpgradeGate {
  readonly closing: boolean
  connectionCount(): number
  connectionsOf(userId: string): number
  /** An upgrade was refused for a token or an origin (`label` names why). */
  refused(label: string): void
}

export function createAuthenticate(opts: ResolvedOptions, verify: (token: string) => Promise<RealtimeUser>, gate: UpgradeGate) {
  const { connections, connectionsPerUser } = opts.limits
  return async function authenticate(request: FastifyRequest): Promise<void> {
    try {
      await check(request)
    } catch (err) {
      // Token and origin refusals carry a label; a closing or full server, or a bad subprotocol, is not one of them.
      const { label } = err as { label?: string }
      if (label !== undefined) gate.refused(label)
      throw err
    }
  }

  async function check(request: FastifyRequest): Promise<void> {
    if (gate.closing) throw new FST_REALTIME_CLOSING()
    // Before any token work: a full server should cost as little as possible.
    if (gate.connectionCount() >= connections) {
      request.log.warn({ connections }, 'realtime upgrade refused: connection limit reached')
      throw new FST_REALTIME_SERVER_FULL()
    }
    const origin = request.headers.origin
    if (origin !== undefined && !opts.anyOrigin && !opts.origins.includes(origin)) {
      request.log.info({ origin }, 'realtime upgrade refused: origin not allowed')
      throw Object.assign(new FST_REALTIME_FORBIDDEN_ORIGIN(origin), { label: 'origin' })
    }
    const protocols = offeredProtocols(request.headers['sec-websocket-protocol'])
    if (protocols.length > 0 && !protocols.includes(SUBPROTOCOL)) {
      throw new FST_REALTIME_BAD_SUBPROTOCOL(`Offer the "${SUBPROTOCOL}" subprotocol`)
    }
    const token = takeToken(request, protocols, opts.allowQueryToken)
    let user: RealtimeUser
    try {
      user = await verify(token)
    } catch (err) {
      const { message, label } = err as Refusal
      request.log.info({ reason: message }, 'realtime authentication failed')
      throw Object.assign(new FST_REALTIME_UNAUTHORIZED(message), { label })
    }
    if (gate.connectionsOf(user.sub) >= connectionsPerUser) {
      request.log.info({ userId: user.sub, connectionsPerUser }, 'realtime upgrade refused: too many connections for the user')
      throw new FST_REALTIME_TOO_MANY_CONNECTIONS(connectionsPerUser)
    }
    ;(request as RequestWithUser)[kUser] = user
  }
}

function takeToken(request: FastifyRequest, protocols: string[], allowQuery: boolean): string {
  const header = request.headers.authorization
  if (header !== undefined) {
    const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(header)
    if (match === null) return refuse(request, 'Malformed Authorization header: expected "Bearer <token>"', 'malformed_header')
    return match[1] as string
  }
  const offered = protocols.find((p) => p.startsWith(BEARER_PREFIX))
  if (offered !== undefined) return offered.slice(BEARER_PREFIX.length)
  const query = (request.raw as RawWithToken)[kQueryToken]
  if (query !== undefined) {
    if (!allowQuery)
      return refuse(
        request,
        'Tokens in the query string are disabled: use the Authorization header or the bearer subprotocol',
        'query_disabled'
      )
    return query
  }
  return refuse(request, 'Missing token', 'missing')
}

function refuse(request: FastifyRequest, reason: string, label: string): never {
  request.log.info({ reason }, 'realtime authentication failed')
  throw Object.assign(new FST_REALTIME_UNAUTHORIZED(reason), { label })
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
