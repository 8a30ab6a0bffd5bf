/**
 * The contract between a connection's session logic (`Connection`) and the door it came through. The session owns
 * everything that is the same for every door: the user, the rooms held, rate limits, token expiry, heartbeat
 * bookkeeping, pending requests and the outbound queue. A transport owns only the bytes: how a message is encoded
 * for its peer, how it is written, how the peer says goodbye and how it proves it is alive.
 *
 * Bindings:
 * - `ws-transport.ts`: WebSocket (ws). Every message is one text frame, framed (and deflated) once per emit and shared
 *   by every recipient; with `batch`, what waited goes out as one frame holding a JSON array.
 * - A text/event-stream binding encodes each message as `id: <id>\ndata: <json>\n\n`, with the id taken from the
 *   message's `room`, `seq` and `epoch`, so that a stream can resume with `Last-Event-ID`.
 *
 * Rules every binding keeps:
 * - Nothing throws out of `write`, `writeMany`, `close`, `terminate` or `ping`: on a transport that is no longer
 *   `open`, they do nothing. The session decides what to send; the binding never drops or reorders a message itself.
 * - `listen()` is called once, synchronously, as the session is built, so no inbound message is missed. The binding
 *   reports `closed` exactly once, whoever ended it.
 * - `size()` and the writes encode through `OutboundMessage.encoded()`, so a message going to thousands of
 *   connections of one binding is encoded once, whatever the number of recipients.
 */
export interface Transport {
  /** Whether writes still reach the peer. */
  readonly open: boolean
  /**
   * Bytes already handed to the transport that the peer has not taken yet (kernel and library buffers). The session
   * adds what waits in its own queue and closes a slow consumer past `limits.bufferedBytes`.
   */
  readonly bufferedAmount: number
  /** What `message` costs on this transport once encoded, in bytes: the unit of the queue bounds. */
  size(message: OutboundMessage): number
  /** Writes one message. */
  write(message: OutboundMessage): void
  /** Writes messages that waited, in order, in as few writes as the transport allows (one, for ws). */
  writeMany(messages: readonly OutboundMessage[]): void
  /** Ends the connection with a close code of `realtime.v1` and a short reason; the peer is told when it can be. */
  close(code: number, reason: string): void
  /** Ends the connection at once, without a goodbye: for a peer that is dead or reads nothing. */
  terminate(): void
  /** Asks the peer for a sign of life; the answer (or any inbound traffic) arrives as `listener.alive()`. */
  ping(): void
  /** Hands the transport's inbound traffic to the session. */
  listen(listener: TransportListener): void
}

/** What a transport reports to its session. */
export interface TransportListener {
  /** One client message, as received (the session parses and checks it). */
  message(data: Buffer, isBinary: boolean): void
  /** The peer showed it is alive without sending a message (a pong). */
  alive(): void
  /** The connection ended (reported once): the close code and reason the peer saw or sent. */
  closed(code: number, reason: string): void
}

/** Turns a message into what one binding writes. Keep the function itself (a module constant): it is the cache key. */
export type Encoder<T> = (message: OutboundMessage) => T

/**
 * One serialized server message on its way to one or many connections. The payload is serialized once per emit; each
 * binding encodes it once (`encoded`) and shares the result among its recipients. A room event carries its position,
 * so that a binding can name it (the SSE `id:`); a volatile room message carries only its room.
 */
export class OutboundMessage {
  /** The first encoding asked for, kept in fields: most messages have one. */
  private encoder: Encoder<unknown> | undefined
  private value: unknown
  private others: Map<Encoder<unknown>, unknown> | undefined

  constructor(
    /** The JSON text of one `realtime.v1` message, UTF-8. */
    readonly payload: Buffer,
    /** The room the message belongs to, when it is an event of one. */
    readonly room?: string,
    /** The event's position in the room (seq ≥ 1 within `epoch`); absent for volatile messages. */
    readonly seq?: number,
    readonly epoch?: string
  ) {}

  /** A room publication (live or from the history) as a message. */
  static of(pub: { readonly frame: Buffer; readonly room: string; readonly seq: number; readonly epoch: string }): OutboundMessage {
    return pub.seq > 0 ? new OutboundMessage(pub.frame, pub.room, pub.seq, pub.epoch) : new OutboundMessage(pub.frame, pub.room)
  }

  /** The message as `encoder` encodes it, computed on the first call and shared by every later one. */
  encoded<T>(encoder: Encoder<T>): T {
    if (this.encoder === encoder) return this.value as T
    if (this.encoder === undefined) {
      this.encoder = encoder
      this.value = encoder(this)
      return this.value as T
    }
    this.others ??= new Map()
    if (!this.others.has(encoder)) this.others.set(encoder, encoder(this))
    return this.others.get(encoder) as T
  }
}
