import type { FastifyBaseLogger } from 'fastify'

/** What an application hook gave back: its value, or the error it threw (already logged unless it was expected). */
export type HookResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown }

const DEFAULT_TIMEOUT = 30_000

/** A hook's promise did not settle within `hookTimeout`: the request it served is answered as failed. */
export class HookTimeoutError extends Error {
  constructor(ms: number) {
    super(`the hook did not settle within ${ms} ms (hookTimeout)`)
    this.name = 'HookTimeoutError'
  }
}

/** How one hook is called: what its failure is logged as, and how long it may take. */
export interface HookCall {
  readonly log: FastifyBaseLogger
  /** The log line of a failure, e.g. `realtime snapshot hook failed`. */
  readonly message: string
  /** More fields for that log line (the room, the message type). */
  readonly fields: object
  /**
   * `hookTimeout`: a promise still pending after this many ms fails with `HookTimeoutError`. Default 30 000 (the
   * option's default), for the few calls made where the options are not at hand (a CORS origin function).
   */
  readonly timeout?: number
  /** Errors the app threw on purpose (a `RealtimeError` from a handler): not logged as failures. */
  readonly expected?: (err: unknown) => boolean
  /** Its value is sent to clients: one JSON cannot hold (a BigInt, a cycle) fails like a throw. */
  readonly serialized?: boolean
}

/** `expected` itself is app-facing code (it reads properties of what the app threw): a throw there means "not expected". */
function isExpected(call: HookCall, error: unknown): boolean {
  try {
    return call.expected?.(error) === true
  } catch {
    return false
  }
}

/**
 * Logs a failure at error level. What an app throws may be anything, even a value none of whose properties can be read
 * (a Proxy that throws): when the logger cannot serialize it, the line is written without it.
 */
export function logFailure(log: FastifyBaseLogger, err: unknown, fields: object, message: string): void {
  try {
    log.error({ err, ...fields }, message)
  } catch {
    log.error({ ...fields, err: 'a thrown value that cannot be read' }, message)
  }
}

/** Throws when JSON cannot hold the value, so the failure happens inside the wrapper, not later in a frame builder. */
function checkSerializable<T>(call: HookCall, value: T): T {
  if (call.serialized === true) JSON.stringify(value)
  return value
}

/**
 * Calls an application hook (`authorize`, `snapshot`, `presenceInfo`, a `handle()` handler, …) and maps its outcome.
 * Nothing escapes: a throw, a rejection, a value JSON cannot hold (with `serialized`), a promise pending past
 * `timeout`, and a throw in `done` itself are logged at error level as `message` with `fields` (unless `expected` says
 * the app meant it) and mapped by `failed`. The promise returned never rejects (unless `failed` throws, which ours do
 * not). A hook that answers synchronously adds one turn of the microtask queue, whatever the hook, so hooks that
 * settle together are answered in order.
 */
export function settleHook<T, R>(
  call: HookCall,
  hook: () => T | PromiseLike<T>,
  done: (value: Awaited<T>) => R,
  failed: (error: unknown) => R
): Promise<R> {
  const fail = (error: unknown): R => {
    if (!isExpected(call, error)) logFailure(call.log, error, call.fields, call.message)
    return failed(error)
  }
  const finish = (value: Awaited<T>): R => {
    try {
      return done(checkSerializable(call, value))
    } catch (error) {
      return fail(error)
    }
  }
  let result: T | PromiseLike<T>
  try {
    result = hook()
  } catch (error) {
    return Promise.resolve(fail(error))
  }
  // Not a thenable: resolving a promise with it would read its `then` again, which may throw this time.
  if (!isThenable(result)) return Promise.resolve().then(() => finish(result as Awaited<T>))
  const pending = result
  return new Promise<R>((resolve) => {
    let settled = false
    const settle = (answer: () => R): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(answer())
    }
    // Unref'd: a hook that never settles must not keep a closing process alive either.
    const ms = call.timeout ?? DEFAULT_TIMEOUT
    const timer = setTimeout(() => settle(() => fail(new HookTimeoutError(ms))), ms).unref()
    // A thenable's `then` is app code too: a throw there is a failure like any other.
    try {
      pending.then(
        (value) => settle(() => finish(value as Awaited<T>)),
        (error: unknown) => settle(() => fail(error))
      )
    } catch (error) {
      settle(() => fail(error))
    }
  })
}

/** Gives a promise nobody waits for a handler, so its rejection goes nowhere; a `then` that throws is ignored too. */
function ignoreSettling(value: PromiseLike<unknown>): void {
  try {
    value.then(undefined, () => {})
  } catch {
    // A thenable whose `then` throws has nothing to reject.
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false
  try {
    return typeof (value as { then?: unknown }).then === 'function'
  } catch {
    return false
  }
}

/** `settleHook` that hands back the hook's value or its error. */
export function callHook<T>(call: HookCall, hook: () => T | PromiseLike<T>): Promise<HookResult<Awaited<T>>> {
  return settleHook(
    call,
    hook,
    (value): HookResult<Awaited<T>> => ({ ok: true, value }),
    (error): HookResult<Awaited<T>> => ({ ok: false, error })
  )
}

/**
 * `callHook` for a hook the contract says is synchronous (`presenceInfo`, the `presence` and `history.rooms`
 * predicates): same logging and checks, no turn of the loop lost; a promise it returns is a failure.
 */
export function callHookSync<T>(call: HookCall, hook: () => T): HookResult<T> {
  try {
    const value = hook()
    if (isThenable(value)) {
      // Refused, but it may still reject: that must not end the process as an unhandled rejection.
      ignoreSettling(value)
      throw new TypeError('the hook returned a promise; it must answer synchronously')
    }
    return { ok: true, value: checkSerializable(call, value) }
  } catch (error) {
    if (!isExpected(call, error)) logFailure(call.log, error, call.fields, call.message)
    return { ok: false, error }
  }
}

/**
 * Runs work nobody awaits (a client message's handling, a gap fill): a rejection is logged at error level as
 * `message`, never left unhandled. Every fire-and-forget promise in `src/` goes through here or ends in its own
 * `.catch` (test/floating-promises.test.ts checks).
 */
export function detach(log: FastifyBaseLogger, message: string, fields: object, work: Promise<unknown>): void {
  work.catch((err: unknown) => logFailure(log, err, fields, message))
}
