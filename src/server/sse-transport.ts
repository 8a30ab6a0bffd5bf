import type { FastifyBaseLogger } from 'fastify'
import secureJson from 'secure-json-parse'
import { ServerType } from '../protocol/constants.js'
import { CLOSE_EVENT, idPart } from '../protocol/sse.js'
import type { Encoder, OutboundMessage, Transport, TransportListener } from './transport.js'

// The text/event-stream binding. The stream carries what the server sends; what the client sends arrives in
// `POST <path>/sse/<sessionId>` (sse-routes.ts), is handed to the session exactly as a WebSocket frame would be, and
// the reply to it (the message carrying its id) goes back in that POST's response instead of the stream.

/** What the binding uses of an HTTP/1.1 `ServerResponse` or an HTTP/2 `Http2ServerResponse`. */
export interface StreamResponse {
  readonly writableLength: number
  readonly writableEnded: boolean
  write(chunk: Buffer | string): boolean
  end(chunk: string): void
  destroy(): void
  on(event: 'close', listener: () => void): unknown
  on(event: 'error', listener: (err: Error) => void): unknown
}

const DATA = Buffer.from('data: ')
const END = Buffer.from('\n\n')
/** `data: <json>\n\n`: one event per message, built once and shared by every stream it goes to. */
const eventEncoder: Encoder<Buffer> = (message) => Buffer.concat([DATA, message.payload, END])
const HEARTBEAT = Buffer.from(': heartbeat\n\n')
/** Replies, whose id ties them to the message they answer. */
const REPLY_TYPES: ReadonlySet<string> = new Set([
  ServerType.Ack,
  ServerType.Error,
  ServerType.Subscribed,
  ServerType.Unsubscribed,
  ServerType.Pong,
  ServerType.Presence
])
/** The id given to a posted message that has none, so that its reply finds the POST; taken off the reply again. */
const POST_ID = '~post.'
const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const
/** What a WebSocket reports when the peer went without a close frame. */
const ABNORMAL = 1006

/** The answer to one POST: the reply message (JSON) and the HTTP status it maps to, or 204 with nothing. */
export interface PostAnswer {
  readonly status: number
  readonly body?: string
}

/** Error codes of a message the client got wrong (400) or sent too fast (429); any other reply is a 200. */
const STATUS_OF_ERROR: Readonly<Record<string, number>> = {
  invalid_json: 400,
  invalid_message: 400,
  invalid_room: 400,
  unknown_type: 400,
  rate_limited: 429
}

interface Reply {
  readonly type: string
  readonly id?: string
  readonly room?: string
  readonly data?: { readonly seq?: number; readonly epoch?: string; readonly code?: string }
}

/**
 * One event stream. Every room event carries an `id:` naming the position of every room the stream holds (see
 * `protocol/sse.ts`); a `subscribed` or `unsubscribed` answered in a POST writes an id alone, which sets the client's
 * last id without dispatching an event, so that the id always lists the rooms the stream holds.
 */
export class SseTransport implements Transport {
  private listener: TransportListener | undefined
  private ended = false
  private closedWith: readonly [number, string] | undefined
  /** Each held room's part of the id, in subscription order. */
  private readonly positions = new Map<string, string>()
  /** POSTs waiting for the reply carrying their message's id. */
  private readonly waiting = new Map<string, (reply: Buffer) => void>()
  /** While a POST is handed to the session: a reply without an id (a message that could not be read) is its answer. */
  private orphanReply: ((reply: Buffer) => void) | undefined
  private posted = 0

  constructor(
    private readonly res: StreamResponse,
    log: FastifyBaseLogger
  ) {
    res.on('close', () => {
      // A peer that went away may leave a half-open socket behind: nothing more is written to it.
      if (!this.res.writableEnded) this.res.destroy()
      this.ended = true
      for (const resolve of this.waiting.values()) resolve(Buffer.alloc(0))
      this.waiting.clear()
      const [code, reason] = this.closedWith ?? [ABNORMAL, 'stream ended']
      this.listener?.closed(code, reason)
    })
    res.on('error', (err) => log.info({ err }, 'realtime stream error'))
  }

  get open(): boolean {
    return !this.ended && !this.res.writableEnded
  }

  /** What the response and the socket under it hold unsent (an HTTP/2 stream counts its own share only). */
  get bufferedAmount(): number {
    return this.res.writableLength
  }

  size(message: OutboundMessage): number {
    return message.encoded(eventEncoder).length
  }

  write(message: OutboundMessage): void {
    this.writeMany([message])
  }

  writeMany(messages: readonly OutboundMessage[]): void {
    if (!this.open) return
    const parts: Buffer[] = []
    for (const message of messages) {
      const reply = message.room === undefined ? this.replyOf(message) : undefined
      if (reply !== undefined && this.answer(reply, message.payload)) {
        // The POST has it; the id moves on the stream when the rooms held change.
        if (this.track(reply)) parts.push(this.idLine(), Buffer.from('\n'))
        continue
      }
      if (message.seq !== undefined) {
        this.positions.set(message.room as string, idPart(message.room as string, message.epoch as string, message.seq))
        parts.push(this.idLine())
      } else if (reply !== undefined && this.track(reply)) parts.push(this.idLine())
      parts.push(message.encoded(eventEncoder))
    }
    if (parts.length > 0) this.res.write(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts))
  }

  /** Writes the `retry:` field, and the ids the stream resumes from. */
  begin(retryMs: number): void {
    this.res.write(`retry: ${retryMs}\n\n`)
  }

  close(code: number, reason: string): void {
    if (!this.open) return
    this.closedWith = [code, reason]
    this.res.end(`event: ${CLOSE_EVENT}\ndata: ${JSON.stringify({ code, reason })}\n\n`)
  }

  terminate(): void {
    this.ended = true
    this.res.destroy()
  }

  /** A comment keeps proxies from timing the stream out. A stream shows it is alive by taking it: TCP says when not. */
  ping(): void {
    if (!this.open) return
    this.res.write(HEARTBEAT)
    this.listener?.alive()
  }

  listen(listener: TransportListener): void {
    this.listener = listener
  }

  /**
   * Hands a posted message to the session and resolves with its reply. `flush` writes what the session queued, so that
   * a reply it made at once is seen while the POST is still being handed over.
   */
  post(raw: Buffer, flush: () => void): { answer: Promise<PostAnswer>; abandon(): void } {
    // Nothing would ever answer it: the replies of a closed session are not written.
    if (!this.open) return { answer: Promise.resolve(this.gone()), abandon: () => {} }
    const listener = this.listener as TransportListener
    const { body, id, injected, expectsReply } = this.prepare(raw)
    // A reply made while the message is handed over (a refusal, most often) answers the POST at once.
    let atOnce: Buffer | undefined
    const now = (reply: Buffer) => {
      atOnce = reply
    }
    let replied: Promise<Buffer> | undefined
    if (id !== undefined) {
      if (expectsReply) replied = new Promise((resolve) => this.waiting.set(id, resolve))
      else this.waiting.set(id, now)
    }
    this.orphanReply = now
    try {
      listener.message(body, false)
      flush()
    } finally {
      this.orphanReply = undefined
    }
    // A POST whose client went away: a later reply goes to the stream.
    const abandon = () => {
      if (id !== undefined) this.waiting.delete(id)
    }
    if (replied === undefined) abandon()
    if (atOnce !== undefined) {
      abandon()
      return { answer: Promise.resolve(this.answerOf(atOnce, injected ? id : undefined)), abandon }
    }
    if (replied === undefined) return { answer: Promise.resolve(this.open ? { status: 204 } : this.gone()), abandon }
    const answer = replied.then((reply) => (reply.length === 0 ? this.gone() : this.answerOf(reply, injected ? id : undefined)))
    return { answer, abandon }
  }

  private gone(): PostAnswer {
    const [code, reason] = this.closedWith ?? [ABNORMAL, 'stream ended']
    return {
      status: 410,
      body: JSON.stringify({
        statusCode: 410,
        code: 'FST_REALTIME_SESSION_CLOSED',
        error: 'Gone',
        message: `the session closed (${code} ${reason})`.trim()
      })
    }
  }

  /** The message as the session will read it: with an id of ours when it has none, so that its reply comes back here. */
  private prepare(raw: Buffer): { body: Buffer; id?: string; injected: boolean; expectsReply: boolean } {
    let message: unknown
    try {
      message = secureJson.parse(raw.toString('utf8'), undefined, PARSE_OPTIONS)
    } catch {
      return { body: raw, injected: false, expectsReply: false }
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message))
      return { body: raw, injected: false, expectsReply: false }
    const fields = message as { type?: unknown; id?: unknown; room?: unknown }
    // A reply to a server request is answered only when it is wrong, which is known at once; one to a question of a
    // room, always.
    const expectsReply = !(fields.type === 'reply' && fields.room === undefined)
    if (typeof fields.id === 'string') return { body: raw, id: fields.id, injected: false, expectsReply }
    if (fields.id !== undefined) return { body: raw, injected: false, expectsReply: false }
    const id = `${POST_ID}${++this.posted}`
    return { body: Buffer.from(JSON.stringify({ ...fields, id })), id, injected: true, expectsReply }
  }

  private answerOf(reply: Buffer, injectedId: string | undefined): PostAnswer {
    let body = reply.toString('utf8')
    const parsed = JSON.parse(body) as Reply
    if (injectedId !== undefined) {
      const { id: _id, ...rest } = parsed
      body = JSON.stringify(rest)
    }
    const status = parsed.type === ServerType.Error ? (STATUS_OF_ERROR[parsed.data?.code as string] ?? 200) : 200
    return { status, body }
  }

  /** A reply to a client message, read from a message made for this connection alone (small: parsed per connection). */
  private replyOf(message: OutboundMessage): Reply | undefined {
    const payload = message.payload
    const reply = JSON.parse(payload.toString('utf8')) as Reply
    return REPLY_TYPES.has(reply.type) ? reply : undefined
  }

  /** Gives a reply to the POST waiting for it; false when none is (it goes to the stream). */
  private answer(reply: Reply, payload: Buffer): boolean {
    if (reply.id === undefined) {
      if (this.orphanReply === undefined || reply.type !== ServerType.Error) return false
      this.orphanReply(payload)
      return true
    }
    const resolve = this.waiting.get(reply.id)
    if (resolve === undefined) return false
    this.waiting.delete(reply.id)
    resolve(payload)
    return true
  }

  /** Follows the rooms held from `subscribed` and `unsubscribed`; true when the id changed. */
  private track(reply: Reply): boolean {
    const room = reply.room
    if (room === undefined) return false
    if (reply.type === ServerType.Subscribed) {
      this.positions.delete(room)
      this.positions.set(room, idPart(room, reply.data?.epoch as string, reply.data?.seq as number))
      return true
    }
    if (reply.type === ServerType.Unsubscribed) return this.positions.delete(room)
    return false
  }

  private idLine(): Buffer {
    return Buffer.from(`id: ${[...this.positions.values()].join(' ')}\n`)
  }
}
