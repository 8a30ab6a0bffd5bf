/** The longest delay a Node or browser timer holds (about 24.8 days); a longer one fires at once. */
export const MAX_TIMER = 2 ** 31 - 1

/** Whether `ms` may be a deadline: a whole number of ms a timer can hold, or `Infinity` (no deadline). */
export function isDeadline(ms: number): boolean {
  return ms === Number.POSITIVE_INFINITY || (Number.isInteger(ms) && ms > 0 && ms <= MAX_TIMER)
}

/** What `isDeadline` accepts, in words, for error messages. */
export const DEADLINE_RULE = `a whole number of ms from 1 to ${MAX_TIMER}, or Infinity`

/**
 * A promise settled by whoever comes first: `settle`, `fail`, or the deadline (`onExpire` decides what then). The one
 * pattern behind server requests, questions and calls that wait for an answer. Settling twice is harmless; the timer
 * is cleared on the first settlement. `Infinity` arms no timer.
 */
export interface Deadline<T> {
  readonly promise: Promise<T>
  resolve(value: T): void
  reject(err: Error): void
}

export function deadline<T>(ms: number, onExpire: (d: Deadline<T>) => void): Deadline<T> {
  let resolve!: (value: T) => void
  let reject!: (err: Error) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  let timer: ReturnType<typeof setTimeout> | undefined
  // A promise settles once: later calls change nothing.
  const d: Deadline<T> = {
    promise,
    resolve(value) {
      clearTimeout(timer)
      resolve(value)
    },
    reject(err) {
      clearTimeout(timer)
      reject(err)
    }
  }
  if (ms !== Number.POSITIVE_INFINITY) timer = setTimeout(() => onExpire(d), ms)
  return d
}
