/**
 * The server API's rate limit: a token bucket per credential, `perSecond` sustained and `burst` at once. At most
 * `max` buckets are kept: past that, the ones at rest (full again) are forgotten, so rotating service tokens cannot
 * grow the map without bound.
 */
export function rateLimiter(limit: { readonly perSecond: number; readonly burst: number }, max = 10_000) {
  const buckets = new Map<string, { tokens: number; at: number }>()
  const level = (bucket: { tokens: number; at: number }, now: number): number =>
    Math.min(limit.burst, bucket.tokens + ((now - bucket.at) / 1000) * limit.perSecond)
  return {
    /** Takes one request's token; returns 0 when allowed, else the seconds to wait before trying again. */
    take(credential: string, now = performance.now()): number {
      if (buckets.size >= max && !buckets.has(credential)) {
        for (const [name, bucket] of buckets) if (level(bucket, now) >= limit.burst) buckets.delete(name)
      }
      const bucket = buckets.get(credential) ?? { tokens: limit.burst, at: now }
      bucket.tokens = level(bucket, now)
      bucket.at = now
      buckets.set(credential, bucket)
      if (bucket.tokens < 1) return Math.ceil((1 - bucket.tokens) / limit.perSecond)
      bucket.tokens -= 1
      return 0
    },
    get size(): number {
      return buckets.size
    }
  }
}
