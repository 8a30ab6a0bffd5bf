import type { CoalesceSettings } from '../options.js'
import type { OutboundMessage, Transport } from './transport.js'

/**
 * Write coalescing, all of it. A turn lasts until the end of the event-loop turn in which something was written (or
 * until `coalesce.windowMs` passed). A connection writes its first message of a turn at once and queues the next
 * ones; the queues are flushed when the turn ends. A turn that begins within `coalesce.windowMs` of the last one's
 * end continues a burst: connections that flushed then queue from their first message. With `coalesce: false`,
 * every message is written at once.
 */
export class WriteScheduler {
  turn = 0
  private turnEnding = false
  private bursting = false
  /** When queues were last flushed at the end of a turn or window. */
  private turnEndedAt = Number.NEGATIVE_INFINITY
  private windowTimer: NodeJS.Timeout | undefined
  private queued: Outbox[] = []
  private queuedSince = 0

  constructor(readonly coalesce: CoalesceSettings | undefined) {}

  /** The queue of one connection, writing to `transport`. */
  outbox(transport: Transport): Outbox {
    return new Outbox(this, transport)
  }

  /** An outbox wrote at once in this turn: the turn must end, so that its next message may too. */
  wrote(): void {
    if (this.turnEnding) return
    this.turnEnding = true
    this.bursting = performance.now() - this.turnEndedAt < (this.coalesce as CoalesceSettings).windowMs
    setImmediate(this.endTurn)
  }

  /** Whether this turn continues a burst (it began soon after the last one ended). */
  inBurst(): boolean {
    this.wrote()
    return this.bursting
  }

  /** An outbox started queueing in this turn. */
  waiting(outbox: Outbox): void {
    if (this.queued.length === 0) this.queuedSince = performance.now()
    this.queued.push(outbox)
    this.wrote()
  }

  /** After one message went to every member of a room: a burst's queues wait at most `coalesce.windowMs`. */
  fannedOut(): void {
    if (this.queued.length > 0 && performance.now() - this.queuedSince >= (this.coalesce as CoalesceSettings).windowMs) this.flushAll()
  }

  /**
   * The end of an event-loop turn that wrote. What waited is written now, unless the turn continued a burst and the
   * oldest message has waited less than `coalesce.windowMs`: then the queues keep filling, across turns, until then.
   */
  private readonly endTurn = (): void => {
    this.turnEnding = false
    if (this.queued.length === 0) {
      this.turn++
      return
    }
    const left = (this.coalesce as CoalesceSettings).windowMs - (performance.now() - this.queuedSince)
    if (this.bursting && left > 0) {
      this.windowTimer ??= setTimeout(this.endWindow, left).unref()
      return
    }
    this.flushAll()
  }

  private readonly endWindow = (): void => {
    this.windowTimer = undefined
    this.flushAll()
  }

  private flushAll(): void {
    clearTimeout(this.windowTimer)
    this.windowTimer = undefined
    this.turn++
    const queued = this.queued
    this.queued = []
    for (const outbox of queued) outbox.flush()
    this.turnEndedAt = performance.now()
  }
}

/** A message sent before the session greeted its peer, kept back with what `push` was told. */
interface Held {
  readonly message: OutboundMessage
  readonly size: number
  readonly immediate: boolean
}

/**
 * One connection's messages waiting for the end of a turn, and where that connection stands in the turns. It starts
 * held: what is pushed before `open()` (the `subscribed` of the rooms a connection starts in) waits for the greeting.
 */
export class Outbox {
  private held: Held[] | undefined = []
  private queue: OutboundMessage[] | undefined
  /** Bytes waiting here (as the transport counts them). */
  bytes = 0
  /** The turn in which this connection last wrote at once. */
  private turn = -1
  /** The turn after the one whose end flushed this queue: in a burst, it queues from the start. */
  private busyTurn = -1

  constructor(
    private readonly scheduler: WriteScheduler,
    private readonly transport: Transport
  ) {}

  /** Writes `message` now, or queues it for the end of the turn (`size` bytes). `immediate` writes what waited too. */
  push(message: OutboundMessage, size: number, immediate: boolean): void {
    if (this.held !== undefined) {
      this.held.push({ message, size, immediate })
      this.bytes += size
      return
    }
    const { scheduler } = this
    if (this.queue !== undefined) {
      this.queue.push(message)
      this.bytes += size
      if (immediate || this.bytes >= (scheduler.coalesce as CoalesceSettings).maxBytes) this.flush()
      return
    }
    if (scheduler.coalesce === undefined) {
      this.transport.write(message)
      return
    }
    const { turn } = scheduler
    if (immediate || (this.turn !== turn && !(this.busyTurn === turn && scheduler.inBurst()))) {
      this.turn = turn
      scheduler.wrote()
      this.transport.write(message)
      return
    }
    this.queue = [message]
    this.bytes = size
    scheduler.waiting(this)
  }

  /**
   * Ends the hold, once: what `greet` pushes goes first, then every message held back, in order, each written or
   * queued as `push` would.
   */
  open(greet: () => void): void {
    const held = this.held as Held[]
    this.held = undefined
    this.bytes = 0
    greet()
    for (const { message, size, immediate } of held) this.push(message, size, immediate)
  }

  /** Writes what waited, in order, as one write where the transport allows (see `Transport.writeMany`). */
  flush(): void {
    const queue = this.queue
    if (queue === undefined) return
    this.queue = undefined
    this.bytes = 0
    this.busyTurn = this.scheduler.turn
    this.transport.writeMany(queue)
  }

  /** Forgets what waited (the connection is closing as a slow consumer). */
  drop(): void {
    this.queue = undefined
    this.bytes = 0
  }
}
