/**
 * Re-attached streams waiting for a run's next events. A run on this instance wakes them as soon as it logs an
 * event; a run on another instance is noticed by the timeout, when they read the log again.
 */
export class Waiters {
  private readonly waiting = new Map<string, Set<() => void>>()

  /** Resolves on the next `wake(room)`, or after `ms`. */
  wait(room: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const same = this.waiting.get(room) ?? new Set()
      this.waiting.set(room, same)
      const done = (): void => {
        clearTimeout(timer)
        same.delete(done)
        if (same.size === 0 && this.waiting.get(room) === same) this.waiting.delete(room)
        resolve()
      }
      const timer = setTimeout(done, ms)
      same.add(done)
    })
  }

  wake(room: string): void {
    for (const done of [...(this.waiting.get(room) ?? [])]) done()
  }

  close(): void {
    for (const room of [...this.waiting.keys()]) this.wake(room)
  }
}
