import { FST_REALTIME_INVALID_OPTION } from './errors.js'

/** One allowed origin: the exact string (`https://app.example`) or a RegExp tested against the `Origin` header. */
export type OriginMatcher = string | RegExp

/**
 * The origins allowed to open the WebSocket from a browser, and to read the plugin's own HTTP routes: a string, a
 * RegExp, a list of them, or a function of the `Origin` header (it may be async; a throw denies). `'*'` allows any
 * origin (never with credentials, and not with a JWT cookie).
 */
export type OriginOption = OriginMatcher | readonly OriginMatcher[] | ((origin: string) => boolean | Promise<boolean>)

/**
 * Pages of a local dev server, on any port: `http://localhost:*` and `http://127.0.0.1:*` (Vite, Next, a page served
 * by the app itself). Production origins must be given.
 */
export const DEFAULT_ORIGINS: readonly RegExp[] = Object.freeze([
  /^http:\/\/localhost(?::\d{1,5})?$/,
  /^http:\/\/127\.0\.0\.1(?::\d{1,5})?$/
])

/** Which origins may open the WebSocket and read the plugin's HTTP routes. */
export interface OriginPolicy {
  /** `'*'` was given: any origin, and CORS without credentials. */
  readonly everyOrigin: boolean
  /** Whether a browser page of `origin` is allowed. A function given as the option may make this async. */
  allows(origin: string): boolean | Promise<boolean>
}

const split = (list: string): string[] =>
  list
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean)

function matcherList(matchers: readonly OriginMatcher[]): OriginPolicy {
  const exact = new Set(matchers.filter((m): m is string => typeof m === 'string'))
  const patterns = matchers.filter((m): m is RegExp => m instanceof RegExp)
  return Object.freeze({
    everyOrigin: exact.has('*'),
    allows: (origin: string) => exact.has('*') || exact.has(origin) || patterns.some((p) => p.test(origin))
  })
}

/**
 * The origin policy from `cors.origin`, else the `CORS_ORIGINS` environment variable (comma separated), else the
 * dev origins. Throws `FST_REALTIME_INVALID_OPTION` naming `cors.origin` for anything else.
 */
export function resolveOrigins(given: unknown, env: string | undefined): OriginPolicy {
  if (given === undefined) return matcherList(env !== undefined && env.trim() !== '' ? split(env) : DEFAULT_ORIGINS)
  if (typeof given === 'function') {
    const allows = given as (origin: string) => unknown
    return Object.freeze({ everyOrigin: false, allows: async (origin: string) => (await allows(origin)) === true })
  }
  const list = typeof given === 'string' ? split(given) : given instanceof RegExp ? [given] : given
  if (!Array.isArray(list) || !list.every((o) => typeof o === 'string' || o instanceof RegExp)) {
    const got = Array.isArray(given) ? 'an array with something else' : given === null ? 'null' : typeof given
    throw new FST_REALTIME_INVALID_OPTION(
      `option "cors.origin" must be a string, a RegExp, an array of them or a function of the origin (got ${got})`
    )
  }
  return matcherList(list.map((o) => (typeof o === 'string' ? o.trim() : o)).filter((o) => o !== ''))
}
