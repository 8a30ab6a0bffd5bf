import { type Deadline, deadline } from '../protocol/deadline.js'
import { RealtimeClientError } from './api.js'

/** A call waiting for its answer (an ack, a reply's ack, a presence list). */
export interface Waiter {
  readonly resolve: (data: unknown) => void
  readonly reject: (err: RealtimeClientError) => void
  /** The protocol's deadline helper owns the timer; the callbacks above run as the answer is read. */
  readonly deadline: Deadline<void>
  /** Written to a link (losing it fails the call) rather than still queued (it goes out after reconnecting). */
  sent: boolean
}

/** The calls waiting for an answer, by id. */
export type Calls = Map<string, Waiter>

/**
 * Keeps a call by id under the protocol's deadline helper (`src/protocol/deadline.ts`, shared with the server's
 * requests and questions). Whatever settles first (the answer, the deadline, a lost link) wins; at the deadline
 * `expired()` runs before the call fails.
 */
export function wait(
  calls: Calls,
  id: string,
  ms: number,
  what: string,
  resolve: Waiter['resolve'],
  reject: Waiter['reject'],
  expired: () => void
): void {
  const d = deadline<void>(ms, () => {
    expired()
    settle(calls, id, new RealtimeClientError('timeout', `no ack for "${what}" within ${ms} ms`))
  })
  calls.set(id, { resolve, reject, deadline: d, sent: false })
}

/** Settles the call `id` with its answer or error; an unknown id (late, or never ours) is ignored. */
export function settle(calls: Calls, id: string | undefined, error: RealtimeClientError | undefined, data?: unknown): void {
  const waiter = calls.get(id as string)
  if (waiter === undefined) return
  calls.delete(id as string)
  waiter.deadline.resolve()
  if (error === undefined) waiter.resolve(data)
  else waiter.reject(error)
}

/** Fails every call (or only those already written, `sentOnly`) with `code`. */
export function failCalls(calls: Calls, code: string, message: string, sentOnly: boolean): void {
  for (const [id, waiter] of calls) if (!sentOnly || waiter.sent) settle(calls, id, new RealtimeClientError(code, message))
}
