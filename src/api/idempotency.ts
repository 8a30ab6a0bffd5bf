import { createHash, randomBytes } from 'node:crypto'
import type { Adapter } from '../adapters/adapter.js'
import { ApiError, ApiErrorCode } from './errors.js'

/**
 * `Idempotency-Key`: the first request with a key runs and its answer is remembered; a retry with the key gets that
 * answer again, and nothing runs twice. Kept in the adapter's shared state (one small entry per key, gone after
 * `ttl`), so a retry that lands on another instance behind the load balancer is recognised too.
 */
export interface Idempotency {
  /** Runs `work` once per key and credential; a retry resolves with the first answer. */
  once<T>(credential: string, key: string, fingerprint: string, work: () => Promise<T>): Promise<{ replayed: boolean; answer: T }>
}

/** The state "room" of one key: it starts with a NUL, which no client room can hold. */
const entryOf = (credential: string, key: string): string =>
  `\u0000realtime:idem:${createHash('sha256').update(`${credential}\n${key}`).digest('base64url')}`

interface Entry {
  readonly fingerprint: string
  /** Set once the first request finished. */
  readonly answer?: unknown
  /** Set while it runs: who runs it. */
  readonly running?: string
}

export function idempotency(adapter: Adapter, ttl: number): Idempotency {
  return {
    async once(credential, key, fingerprint, work) {
      const room = entryOf(credential, checkKey(key))
      const mine = JSON.stringify({ fingerprint, running: randomBytes(9).toString('base64url') } satisfies Entry)
      const held = await adapter.stateClaim(room, 'r', mine, ttl)
      if (held !== mine) {
        const entry = JSON.parse(held) as Entry
        if (entry.fingerprint !== fingerprint) {
          throw new ApiError(409, ApiErrorCode.IdempotencyConflict, 'this Idempotency-Key was used for a different request')
        }
        if (entry.running !== undefined) {
          throw new ApiError(409, ApiErrorCode.IdempotencyConflict, 'a request with this Idempotency-Key is still running; retry')
        }
        return { replayed: true, answer: entry.answer as never }
      }
      let answer: Awaited<ReturnType<typeof work>>
      try {
        answer = await work()
      } catch (err) {
        // Nothing happened (or it failed): the key is free again, so a retry may do it.
        await adapter.stateWrite(room, { r: null }, ttl).catch(() => undefined)
        throw err
      }
      await adapter.stateWrite(room, { r: JSON.stringify({ fingerprint, answer } satisfies Entry) }, ttl)
      return { replayed: false, answer }
    }
  }
}

/** An `Idempotency-Key` header's value, checked. */
export function checkKey(key: string): string {
  if (key.length === 0 || key.length > 256)
    throw new ApiError(400, ApiErrorCode.InvalidMessage, 'Idempotency-Key must be 1 to 256 characters')
  return key
}

/** What makes two requests the same request: method, route and body. */
export function fingerprintOf(method: string, url: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${url}\n${JSON.stringify(body)}`)
    .digest('base64url')
}
