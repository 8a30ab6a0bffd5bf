import type { FastifyRequest } from 'fastify'
import { FST_REALTIME_AUTHENTICATE_FAILED, FST_REALTIME_FORBIDDEN_ORIGIN, FST_REALTIME_UNAUTHORIZED } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import type { OriginPolicy } from '../origins.js'
import { BEARER_PREFIX } from '../protocol/constants.js'
import type { RealtimeUser } from '../types.js'
import { kQueryToken, namedUser, type RawWithToken, type Refusal, type Verifier } from './auth.js'
import { callHook } from './hooks.js'

/** Whether a browser page of `origin` may connect or read our routes; an origin function that throws denies, and is logged. */
export async function originAllowed(policy: OriginPolicy, origin: string, request: FastifyRequest): Promise<boolean> {
  const call = { log: request.log, message: 'realtime origin check failed; origin refused', fields: { origin } }
  const allowed = await callHook(call, () => policy.allows(origin))
  return allowed.ok && allowed.value
}

/**
 * Who a request is: the app's `authenticate` hook, else a JWT from the `Authorization` header, the `bearer.`
 * subprotocol, `?token=` (when allowed) or the `jwt.cookie` cookie, in that order. A function of the Fastify request,
 * so every door into the rooms runs the same one. Throws an error with the HTTP status the client gets, and a
 * `label` for the metrics when the user is refused.
 */
export function createIdentify(opts: ResolvedOptions, verify: Verifier) {
  const hook = opts.authenticate
  return async function identify(request: FastifyRequest, protocols: readonly string[]): Promise<RealtimeUser> {
    if (hook !== undefined) return authenticated(request, await runHook(hook, request, opts.hookTimeout))
    const { token, cookie } = takeToken(request, protocols, opts)
    // A cookie goes with every request the browser makes to us, whichever page asks: only an allowed page may use it.
    // A browser names the page with Origin, except on a same-origin GET (the client's request to learn why an upgrade
    // failed), which it marks with Sec-Fetch-Site instead, a header no page can set.
    if (cookie && request.headers.origin === undefined && request.headers['sec-fetch-site'] !== 'same-origin') {
      request.log.info('realtime upgrade refused: a cookie token needs an Origin')
      throw Object.assign(new FST_REALTIME_FORBIDDEN_ORIGIN('(none: a cookie token needs one)'), { label: 'origin' })
    }
    try {
      return await verify(token, request)
    } catch (err) {
      return refuse(request, (err as Refusal).message, (err as Refusal).label)
    }
  }
}

/** An error the app threw to say who may not come in (a 401 or 403 of its own): its answer stands, and is not logged. */
function appRefusal(err: unknown): boolean {
  const status = (err as { statusCode?: unknown } | null)?.statusCode
  return typeof status === 'number' && status >= 400 && status < 500
}

/** The app's `authenticate`, called through `callHook`: a refusal of its own stands; any other throw is a 500. */
async function runHook(hook: NonNullable<ResolvedOptions['authenticate']>, request: FastifyRequest, timeout: number): Promise<unknown> {
  const call = { log: request.log, message: 'realtime authenticate hook failed', fields: {}, timeout, expected: appRefusal }
  const result = await callHook(call, () => hook(request))
  if (result.ok) return result.value
  if (appRefusal(result.error)) throw Object.assign(result.error as Error, { label: 'authenticate' })
  throw new FST_REALTIME_AUTHENTICATE_FAILED()
}

function authenticated(request: FastifyRequest, user: unknown): RealtimeUser {
  if (user === null || user === undefined || user === false) return refuse(request, 'Not authenticated', 'authenticate')
  try {
    return namedUser(user, 'authenticate returned a user without a sub')
  } catch (err) {
    request.log.error({ reason: (err as Error).message }, 'realtime authenticate hook returned no user id')
    throw new FST_REALTIME_AUTHENTICATE_FAILED()
  }
}

function takeToken(request: FastifyRequest, protocols: readonly string[], opts: ResolvedOptions): { token: string; cookie: boolean } {
  const header = request.headers.authorization
  if (header !== undefined) {
    const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(header)
    if (match === null) return refuse(request, 'Malformed Authorization header: expected "Bearer <token>"', 'malformed_header')
    return { token: match[1] as string, cookie: false }
  }
  const offered = protocols.find((p) => p.startsWith(BEARER_PREFIX))
  if (offered !== undefined) return { token: offered.slice(BEARER_PREFIX.length), cookie: false }
  const query = (request.raw as RawWithToken)[kQueryToken]
  if (query !== undefined) {
    if (!opts.allowQueryToken)
      return refuse(
        request,
        'Tokens in the query string are disabled: use the Authorization header or the bearer subprotocol',
        'query_disabled'
      )
    return { token: query, cookie: false }
  }
  if (opts.jwtCookie !== undefined) {
    const value = (request as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.[opts.jwtCookie]
    if (value !== undefined && value !== '') return { token: value, cookie: true }
  }
  return refuse(request, 'Missing token', 'missing')
}

function refuse(request: FastifyRequest, reason: string, label: string): never {
  request.log.info({ reason }, 'realtime authentication failed')
  throw Object.assign(new FST_REALTIME_UNAUTHORIZED(reason), { label })
}
