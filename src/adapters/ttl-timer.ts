const MAX_PERIOD = 60_000

/**
 * One interval that runs `task` twice per the shortest ttl it has been told of (at most once a minute), so
 * something kept for a ttl is looked after at most half a ttl late. The adapters use it to sweep or keep alive rooms.
 */
export function ttlTimer(task: () => void): { watch(ttl: number): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined
  let period = MAX_PERIOD
  return {
    watch(ttl) {
      const every = Math.max(1, Math.min(Math.floor(ttl / 2), MAX_PERIOD))
      if (timer !== undefined && every >= period) return
      clearInterval(timer)
      period = every
      timer = setInterval(task, every).unref()
    },
    stop() {
      clearInterval(timer)
      timer = undefined
    }
  }
}
