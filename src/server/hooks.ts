import type { FastifyBaseLogger } from 'fastify'

/** What an application hook gave back: its value, or the error it threw (already logged unless it was expected). */
export type HookResult<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown }

/**
 * Calls an application hook (`authorize`, `snapshot`, a `handle()` handler) and maps its outcome. A throw or a
 * rejection never escapes: it is logged at error level as `message` with `fields` (unless `expected` says the app
 * meant it, as a `RealtimeError` from a handler) and mapped by `failed`. Every asynchronous hook call goes through
 * here: it is where a deadline for hooks that hang, or a check of what they return, belongs. It adds one turn of the
 * microtask queue to the hook's own, whatever the hook, so hooks that settle together are answered in order.
 */
export function settleHook<T, R>(
  log: FastifyBaseLogger,
  message: string,
  fields: object,
  hook: () => T | PromiseLike<T>,
  done: (value: Awaited<T>) => R,
  failed: (error: unknown) => R,
  expected?: (err: unknown) => boolean
): Promise<R> {
  const fail = (error: unknown): R => {
    if (expected?.(error) !== true) log.error({ err: error, ...fields }, message)
    return failed(error)
  }
  let result: T | PromiseLike<T>
  try {
    result = hook()
  } catch (error) {
    return Promise.resolve(fail(error))
  }
  return Promise.resolve(result).then(done, fail)
}

/** `settleHook` that hands back the hook's value or its error. */
export function callHook<T>(
  log: FastifyBaseLogger,
  message: string,
  fields: object,
  hook: () => T | PromiseLike<T>,
  expected?: (err: unknown) => boolean
): Promise<HookResult<Awaited<T>>> {
  return settleHook(
    log,
    message,
    fields,
    hook,
    (value): HookResult<Awaited<T>> => ({ ok: true, value }),
    (error): HookResult<Awaited<T>> => ({ ok: false, error }),
    expected
  )
}

/** `callHook` for a hook the contract says is synchronous (`presenceInfo`): same logging, no turn of the loop lost. */
export function callHookSync<T>(log: FastifyBaseLogger, message: string, fields: object, hook: () => T): HookResult<T> {
  try {
    return { ok: true, value: hook() }
  } catch (error) {
    log.error({ err: error, ...fields }, message)
    return { ok: false, error }
  }
}
