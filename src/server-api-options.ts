import { FST_REALTIME_INVALID_OPTION } from './errors.js'
import { boolean, duration, fail, plainObject, positiveInt } from './option-checks.js'

/**
 * The HTTP server API: publish, batch, token streams, questions, runs, presence, disconnect and stats, authenticated
 * with `Authorization: Bearer <credential>`. Server credentials are never user tokens: the API refuses user tokens,
 * and the WebSocket endpoint refuses server credentials.
 */
export interface ServerApiOptions {
  /** Static API keys, each at least 16 characters. Compared in constant time; never logged. */
  keys?: readonly string[]
  /**
   * Accepts other credentials, e.g. service JWTs: resolve `true` for a token of a service (a JWT whose `scope` claim
   * grants the API), `false` otherwise. A thrown error counts as `false`.
   */
  verify?: (token: string) => boolean | Promise<boolean>
  /** Largest request body in bytes; larger gets 413. Default 1 MiB. */
  bodyLimit?: number
  /** Requests per second per credential (token bucket of `burst`), past which 429. `false` for none. Default 1 000/s, burst 2 000. */
  rateLimit?: { perSecond?: number; burst?: number } | false
  /** Milliseconds an `Idempotency-Key` is remembered. Default 24 h. */
  idempotencyTtl?: number
  /** Longest long-poll (`?wait=`), in seconds. Default 30. */
  maxWait?: number
  /** Milliseconds an HTTP token stream or run may go without a request before it is ended. Default 5 min. */
  idleTimeout?: number
  /** Serve the OpenAPI 3 document of these routes at `GET <path>/openapi.json`. Default `false`. */
  openapi?: boolean
}

/** The server API as resolved. */
export interface ServerApiSettings {
  readonly keys: readonly string[]
  readonly verify: ((token: string) => boolean | Promise<boolean>) | undefined
  readonly bodyLimit: number
  readonly rateLimit: { readonly perSecond: number; readonly burst: number } | undefined
  readonly idempotencyTtl: number
  readonly maxWait: number
  readonly idleTimeout: number
  readonly openapi: boolean
}

const SERVER_API_KEYS = ['keys', 'verify', 'bodyLimit', 'rateLimit', 'idempotencyTtl', 'maxWait', 'idleTimeout', 'openapi']

export function resolveServerApi(value: unknown): ServerApiSettings | undefined {
  if (value === undefined) return undefined
  const given = plainObject('serverApi', value)
  for (const key of Object.keys(given)) {
    if (!SERVER_API_KEYS.includes(key)) {
      throw new FST_REALTIME_INVALID_OPTION(`unknown option "serverApi.${key}" (known: ${SERVER_API_KEYS.join(', ')})`)
    }
  }
  const keys = given.keys ?? []
  if (!Array.isArray(keys) || !keys.every((k) => typeof k === 'string' && k.length >= 16)) {
    fail('serverApi.keys', 'an array of strings of at least 16 characters', keys)
  }
  if (given.verify !== undefined && typeof given.verify !== 'function') fail('serverApi.verify', 'a function', given.verify)
  if (keys.length === 0 && given.verify === undefined) {
    throw new FST_REALTIME_INVALID_OPTION('option "serverApi" needs "keys" or "verify": the API is never open to anyone')
  }
  let rateLimit: ServerApiSettings['rateLimit']
  if (given.rateLimit !== false) {
    const r = plainObject('serverApi.rateLimit', given.rateLimit)
    const perSecond = positiveInt('serverApi.rateLimit.perSecond', r.perSecond, 1000)
    rateLimit = Object.freeze({ perSecond, burst: positiveInt('serverApi.rateLimit.burst', r.burst, 2 * perSecond) })
  }
  const maxWait = positiveInt('serverApi.maxWait', given.maxWait, 30)
  if (maxWait > 600) fail('serverApi.maxWait', 'at most 600 seconds', maxWait)
  return Object.freeze({
    keys: Object.freeze([...(keys as string[])]),
    verify: given.verify as ServerApiSettings['verify'],
    bodyLimit: positiveInt('serverApi.bodyLimit', given.bodyLimit, 1024 * 1024),
    rateLimit,
    idempotencyTtl: duration('serverApi.idempotencyTtl', given.idempotencyTtl, 24 * 3600_000),
    maxWait,
    idleTimeout: duration('serverApi.idleTimeout', given.idleTimeout, 5 * 60_000),
    openapi: boolean('serverApi.openapi', given.openapi, false)
  })
}
