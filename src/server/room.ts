import type { HistoryPolicy, Publication, StreamPosition } from '../adapters/adapter.js'
import type { Connection } from './connection.js'

/**
 * A subscribe in progress on a connection. From the moment it is registered with its room, it collects the room's
 * publications, so that those arriving while the history is read (or the snapshot taken) follow it with no gap.
 */
export class JoinTicket {
  cancelled = false
  /** The collection outgrew `limit` bytes (a snapshot that took too long): it must start over. */
  overflowed = false
  private buffer: Publication[] = []
  private bytes = 0

  constructor(
    readonly room: string,
    private readonly limit: number
  ) {}

  push(pub: Publication): void {
    if (this.overflowed) return
    this.bytes += pub.frame.length
    if (this.bytes > this.limit) {
      this.overflowed = true
      this.buffer = []
      return
    }
    this.buffer.push(pub)
  }

  /** Starts collecting afresh, before a new read of the room's position. */
  reset(): void {
    this.buffer = []
    this.bytes = 0
    this.overflowed = false
  }

  /**
   * The publications collected that follow on from `position`: the next events of its epoch, and volatile events.
   * `complete` is false when the collection breaks off (an event of another epoch, or a seq skipped because this
   * instance missed it): the connection then has to resume to learn what it lacks.
   */
  after(position: StreamPosition): { publications: Publication[]; complete: boolean } {
    const publications: Publication[] = []
    let seq = position.seq
    for (const pub of this.buffer) {
      if (pub.seq === 0) publications.push(pub)
      else if (pub.epoch !== position.epoch || pub.seq > seq + 1) return { publications, complete: false }
      else if (pub.seq === seq + 1) {
        publications.push(pub)
        seq = pub.seq
      }
    }
    return { publications, complete: true }
  }
}

/**
 * One room as this instance holds it: its local subscribers, the subscribes in progress, and the position of the
 * last event written to them. The seq counter and the history belong to the adapter.
 */
export class Room {
  readonly members = new Set<Connection>()
  readonly joiners = new Set<JoinTicket>()
  /** The last event written to the members; undefined until the first one or the first join. */
  position: StreamPosition | undefined
  /** Publications held back while a gap is filled from the history. */
  held: Publication[] | undefined
  /** Whether this instance should receive the room's publications, and whether the adapter says it does. */
  wanted = false
  subscribed = false
  /** The chain of adapter subscribe/unsubscribe calls, so they run in order. */
  sync: Promise<void> = Promise.resolve()

  constructor(
    readonly name: string,
    readonly policy: HistoryPolicy,
    readonly presence: boolean
  ) {}

  /** Nothing on this instance needs the room any more. */
  get idle(): boolean {
    return this.members.size === 0 && this.joiners.size === 0
  }
}
