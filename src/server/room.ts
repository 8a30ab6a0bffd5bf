import { randomBytes } from 'node:crypto'
import type { Connection } from './connection.js'

export interface HistoryPolicy {
  /** Events kept; 0 keeps none (resume then works only for a client that missed nothing). */
  readonly size: number
  /** Milliseconds an event is kept, and a room without subscribers outlives its last event. */
  readonly ttl: number
}

interface Entry {
  readonly seq: number
  readonly frame: Buffer
  readonly at: number
}

/**
 * One room on this instance: its subscribers, its seq counter and its bounded history.
 * The `epoch` names one run of the seq counter; a new Room (after expiry or a restart) has a new one,
 * so a client's old `since` can never be mistaken for a position in the new run.
 */
export class Room {
  readonly members = new Set<Connection>()
  readonly epoch = randomBytes(6).toString('base64url')
  seq = 0
  lastActivity: number
  private readonly entries: Entry[] = []

  constructor(
    readonly name: string,
    readonly policy: HistoryPolicy,
    now: number
  ) {
    this.lastActivity = now
  }

  append(frame: Buffer, now: number): void {
    this.lastActivity = now
    if (this.policy.size === 0) return
    this.entries.push({ seq: this.seq, frame, at: now })
    if (this.entries.length > this.policy.size) this.entries.shift()
  }

  /**
   * The frames of every event after `since`, or `undefined` when the history no longer holds all of them
   * (then the client must be told `recovered: false`).
   */
  since(since: number, now: number): Buffer[] | undefined {
    this.dropExpired(now)
    if (since > this.seq) return undefined
    if (since === this.seq) return []
    const first = this.entries[0]
    if (first === undefined || first.seq > since + 1) return undefined
    return this.entries.slice(since + 1 - first.seq).map((e) => e.frame)
  }

  /** True when nothing holds the room any more: no subscriber and its last event is older than the ttl. */
  expired(now: number): boolean {
    return this.members.size === 0 && now - this.lastActivity >= this.policy.ttl
  }

  private dropExpired(now: number): void {
    let n = 0
    while (n < this.entries.length && now - (this.entries[n] as Entry).at >= this.policy.ttl) n++
    if (n > 0) this.entries.splice(0, n)
  }
}
