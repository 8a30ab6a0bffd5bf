/** How long to wait before reconnecting. */
export interface BackoffOptions {
  /** Upper bound of the first delay, in ms. Default 500. */
  initialDelay?: number
  /** Cap of every delay, in ms. Default 10 000. */
  maxDelay?: number
  /** Growth per attempt. Default 2. */
  factor?: number
}

/**
 * Exponential backoff with full jitter: a random delay between 0 and `min(maxDelay, initialDelay × factor^attempt)`.
 * Spreading reconnects over the whole window keeps a restarted server from being hit by every client at once.
 * `random` is injectable so the result can be tested.
 */
export function backoff(attempt: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const { initialDelay = 500, maxDelay = 10_000, factor = 2 } = options
  const ceiling = Math.min(maxDelay, initialDelay * factor ** attempt)
  return Math.floor(random() * ceiling)
}
