import type { Duplex } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import secureJson from 'secure-json-parse'
import type { WebSocket } from 'ws'
import { ClientType, CloseCode, ErrorCode, ServerType } from '../protocol/constants.js'
import { ApplicationMessage, checkEnvelope, clientChecks, compile, ROOM_TYPES } from '../protocol/schemas.js'
import type { RealtimeConnection, RealtimeUser } from '../types.js'
import type { Hub, PendingRequest } from './hub.js'
import { frameType } from './metrics.js'
import { deflateWindow, OutboundMessage, textFrame } from './outbound.js'
import type { JoinTicket } from './room.js'

interface Envelope {
  type: string
  id?: string
  room?: string
  data?: unknown
  error?: unknown
}

/** Verifies a token sent in an `auth` message; rejects with a message that is safe to send to the client. */
export type VerifyToken = (token: string) => Promise<RealtimeUser>

const MAX_TIMER = 2 ** 31 - 1
const OPEN = 1
const ARRAY_OPEN = Buffer.from('[')
const ARRAY_COMMA = Buffer.from(',')
const ARRAY_CLOSE = Buffer.from(']')
/** RFC 6455 allows at most 123 bytes of close reason. */
const MAX_REASON_BYTES = 123
const checkApplication = compile(ApplicationMessage)
const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const

/**
 * One client connection. Listeners are attached in the constructor, synchronously after the upgrade,
 * so no frame is missed; every exit goes through `cleanup()`, which runs once.
 */
export class Connection implements RealtimeConnection {
  readonly rooms = new Set<string>()
  readonly pending = new Set<PendingRequest>()
  /** Subscribes still waiting for `authorize` or the snapshot. */
  readonly joining = new Set<JoinTicket>()
  closed = false
  /** Last time anything (a frame or a pong) arrived; the heartbeat reaps connections that fall behind. */
  lastSeen = Date.now()
  private currentUser: RealtimeUser
  private invalidInRow = 0
  private limitedInRow = 0
  private tokens: number
  /** `authorize` answers for `publish`, per room, kept for the connection (or until its token is refreshed). */
  private publishAnswers: Map<string, Promise<boolean>> | undefined
  private refilledAt = performance.now()
  private expiryTimer: NodeJS.Timeout | undefined
  private killTimer: NodeJS.Timeout | undefined
  /** The stream under the WebSocket: frames built once for many connections are written to it as they are. */
  private readonly wire: Duplex
  /** The compression window this connection takes our messages in; 0 when they go uncompressed. */
  private readonly deflateBits: number
  /** Messages waiting for this burst's write, and their bytes. */
  private out: OutboundMessage[] | undefined
  private outBytes = 0
  /** The hub's write turn in which this connection last wrote at once. */
  private turn = -1
  /** The turn after the one whose end flushed this connection's queue: in a burst, it queues from the start. */
  private busyTurn = -1
  /** Written before `start()`: the rooms joined at connect answer `subscribed` before `ready` is sent, then follow it. */
  private held: Buffer[] | undefined = []

  constructor(
    readonly id: string,
    readonly socket: WebSocket,
    user: RealtimeUser,
    readonly log: FastifyBaseLogger,
    private readonly hub: Hub,
    private readonly verifyToken: VerifyToken
  ) {
    this.currentUser = user
    this.tokens = hub.opts.limits.burst
    this.wire = (socket as unknown as { _socket: Duplex })._socket
    this.deflateBits = deflateWindow(socket, hub.opts.deflate)
    socket.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary))
    socket.on('pong', () => {
      this.lastSeen = Date.now()
    })
    socket.on('close', (code, reason) => this.onClose(code, reason))
  }

  /** Called once the hub holds the connection: greets the client and arms the token expiry (which may close it at once). */
  start(heartbeatMs: number): void {
    this.log.info('realtime connection opened')
    const { maxPayload } = this.hub.opts.limits
    this.flush()
    const held = this.held as Buffer[]
    this.held = undefined
    this.sendJson({ type: ServerType.Ready, data: { connectionId: this.id, userId: this.userId, heartbeatMs, maxPayload } })
    this.flush()
    for (const chunk of held) this.write(chunk)
    this.scheduleExpiry()
  }

  get user(): RealtimeUser {
    return this.currentUser
  }

  get userId(): string {
    return this.currentUser.sub
  }

  // Writing

  /** Sends one serialized message built for this connection alone (a reply, a replayed event). Never throws. */
  sendFrame(payload: Buffer, immediate = false): void {
    if (this.send(new OutboundMessage(payload, this.hub.opts.deflate), false, immediate)) this.hub.metrics?.sent(frameType(payload), 1)
  }

  sendJson(message: object): void {
    this.sendFrame(Buffer.from(JSON.stringify(message)))
  }

  /**
   * Sends a message, possibly shared with other connections (its frame is built once). A frame for a connection
   * that has not written in this turn of the event loop goes out at once; more frames in the same turn wait and go
   * out together at its end (see `coalesce`). Past `limits.volatileBytes` waiting, a volatile event is dropped for
   * this connection; past `limits.bufferedBytes`, the connection is closed with 4008 and resumes from the history.
   * Returns whether the message was written or queued. Never throws: on a closed connection it does nothing.
   */
  send(message: OutboundMessage, volatile: boolean, immediate: boolean): boolean {
    if (this.closed) return false
    const frame = message.frame(this.deflateBits)
    const { limits, coalesce } = this.hub.opts
    // Only data already waiting counts against the client: one large event to an idle socket is not slowness.
    const queued = this.outBytes + this.socket.bufferedAmount
    if (queued > 0) {
      if (queued + frame.length > limits.bufferedBytes) {
        this.slowConsumer(queued)
        return false
      }
      if (volatile && queued + frame.length > limits.volatileBytes) {
        this.hub.counters.dropped++
        return false
      }
    }
    this.hub.counters.messagesOut++
    if (this.out !== undefined) {
      this.out.push(message)
      this.outBytes += frame.length
      if (immediate || this.outBytes >= (coalesce as { maxBytes: number }).maxBytes) this.flush()
      return true
    }
    if (coalesce === undefined) {
      this.write(frame)
      return true
    }
    const { turn } = this.hub
    if (immediate || (this.turn !== turn && !(this.busyTurn === turn && this.hub.inBurst()))) {
      this.turn = turn
      this.hub.wrote()
      this.write(frame)
      return true
    }
    this.out = [message]
    this.outBytes = frame.length
    this.hub.waiting(this)
    return true
  }

  /** Writes what waited, as one write: each message its own frame, or with `batch` one JSON array of them. */
  flush(): void {
    const out = this.out
    if (out === undefined) return
    this.out = undefined
    const bytes = this.outBytes
    this.outBytes = 0
    this.busyTurn = this.hub.turn
    if (out.length === 1) this.write((out[0] as OutboundMessage).frame(this.deflateBits))
    else if (this.hub.opts.batch) {
      const parts: Buffer[] = [ARRAY_OPEN]
      for (const message of out) parts.push(message.payload, ARRAY_COMMA)
      parts[parts.length - 1] = ARRAY_CLOSE
      this.write(textFrame(Buffer.concat(parts)))
    } else {
      const frames = out.map((message) => message.frame(this.deflateBits))
      this.write(Buffer.concat(frames, bytes))
    }
  }

  private write(chunk: Buffer): void {
    if (this.held !== undefined) this.held.push(chunk)
    else if (this.socket.readyState === OPEN) this.wire.write(chunk)
  }

  private slowConsumer(queued: number): void {
    this.log.warn({ bufferedAmount: queued }, 'realtime slow consumer disconnected')
    this.out = undefined
    this.outBytes = 0
    this.close(CloseCode.SlowConsumer, 'slow consumer')
    // A client that reads nothing never reads the close frame either.
    this.killTimer = setTimeout(() => this.socket.terminate(), 1000).unref()
  }

  sendError(code: string, message: string, id?: string, room?: string): void {
    this.hub.counters.errors++
    this.hub.metrics?.error(code)
    this.sendJson({ type: ServerType.Error, id, room, data: { code, message } })
  }

  ping(): void {
    if (!this.closed) this.socket.ping()
  }

  // Reading

  private onMessage(raw: Buffer, isBinary: boolean): void {
    if (this.closed) return
    this.lastSeen = Date.now()
    this.hub.counters.messagesIn++
    const { limits } = this.hub.opts
    if (raw.length > limits.maxPayload) {
      this.close(CloseCode.MessageTooBig, 'message too big')
      return
    }
    const limited = !this.takeToken()
    if (limited && ++this.limitedInRow > limits.maxRateLimited) {
      this.close(CloseCode.RateLimited, 'rate limit exceeded')
      return
    }
    if (!limited) this.limitedInRow = 0
    if (isBinary) {
      this.hub.metrics?.received('invalid')
      this.invalid(ErrorCode.InvalidJson, 'binary frames are not supported: send JSON text')
      return
    }
    let message: unknown
    try {
      message = secureJson.parse(raw.toString('utf8'), undefined, PARSE_OPTIONS)
    } catch {
      this.hub.metrics?.received('invalid')
      this.invalid(ErrorCode.InvalidJson, 'the frame is not valid JSON (or has a __proto__/constructor key)')
      return
    }
    if (!checkEnvelope.check(message)) {
      // Echo the id only when it is a valid one, so the error itself stays within the protocol.
      const given = (message as Envelope | null)?.id
      const id = typeof given === 'string' && given.length > 0 && given.length <= 128 ? given : undefined
      this.hub.metrics?.received('invalid')
      this.invalid(ErrorCode.InvalidMessage, `invalid envelope at ${checkEnvelope.explain(message)}`, id)
      return
    }
    const envelope = message as Envelope
    // Only types the server knows become labels, so a client cannot grow the metrics without bound.
    this.hub.metrics?.received(clientChecks.has(envelope.type) || this.hub.handlers.has(envelope.type) ? envelope.type : 'unknown')
    if (limited) {
      this.sendError(ErrorCode.RateLimited, `more than ${limits.messagesPerSecond} messages per second`, envelope.id, envelope.room)
      return
    }
    this.dispatch(envelope)
  }

  private takeToken(): boolean {
    const { messagesPerSecond, burst } = this.hub.opts.limits
    const t = performance.now()
    this.tokens = Math.min(burst, this.tokens + ((t - this.refilledAt) / 1000) * messagesPerSecond)
    this.refilledAt = t
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** Replies with an error; past `limits.maxInvalidMessages` in a row, closes with 1008. */
  private invalid(code: string, message: string, id?: string, room?: string): void {
    if (++this.invalidInRow > this.hub.opts.limits.maxInvalidMessages) {
      this.close(CloseCode.PolicyViolation, 'too many invalid messages')
      return
    }
    this.sendError(code, message, id, room)
  }

  private dispatch(msg: Envelope): void {
    // The envelope check has made `room` a string or undefined.
    const { type, id, room } = msg
    if (ROOM_TYPES.has(type) && !this.hub.validRoom(room)) {
      const max = this.hub.opts.limits.roomNameMaxLength
      this.invalid(
        ErrorCode.InvalidRoom,
        `"${type}" needs a room: 1 to ${max} characters matching ${this.hub.opts.limits.roomPattern}`,
        id,
        room
      )
      return
    }
    const control = clientChecks.get(type) ?? checkApplication
    if (!control.check(msg)) {
      this.invalid(ErrorCode.InvalidMessage, `invalid "${type}" message at ${control.explain(msg)}`, id, room)
      return
    }
    switch (type) {
      case ClientType.Subscribe: {
        this.invalidInRow = 0
        const room = msg.room as string
        this.hub.subscribe(this, room, (msg.data ?? {}) as { since?: number; epoch?: string }, id).catch((err: unknown) => {
          this.log.error({ err, room }, 'realtime subscribe failed')
          this.sendError(ErrorCode.Internal, 'internal error', id, room)
        })
        return
      }
      case ClientType.Unsubscribe:
        this.invalidInRow = 0
        for (const ticket of this.joining) if (ticket.room === room) ticket.cancelled = true
        this.hub.detach(this, room as string)
        this.sendJson({ type: ServerType.Unsubscribed, id, room: msg.room })
        return
      case ClientType.Ping:
        this.invalidInRow = 0
        this.sendJson({ type: ServerType.Pong, id })
        return
      case ClientType.Auth:
        this.invalidInRow = 0
        void this.refresh((msg.data as { token: string }).token, id)
        return
      case ClientType.Reply:
        this.onReply(msg)
        return
      case ClientType.Presence:
        this.invalidInRow = 0
        void this.presence(msg.room as string, id)
        return
      case ClientType.Publish:
        this.publish(msg.room as string, msg.data as { type: string; data?: unknown }, id)
        return
      case ClientType.Cancel:
        this.invalidInRow = 0
        void this.hub.runs.fromClient(this, msg.room as string, (msg.data as { runId: string }).runId, id)
        return
    }
    const registered = this.hub.handlers.get(type)
    if (registered === undefined) {
      this.invalid(ErrorCode.UnknownType, `unknown message type "${type}"`, id)
      return
    }
    if (!registered.check.check(msg.data)) {
      this.invalid(ErrorCode.InvalidMessage, `invalid data for "${type}" at ${registered.check.explain(msg.data)}`, id)
      return
    }
    this.invalidInRow = 0
    void this.run(registered.handler, msg)
  }

  /** Asks `authorize` about publishing to `room` once; later publishes to the room reuse the answer. */
  mayPublish(room: string, ask: () => Promise<boolean>): Promise<boolean> {
    // Made on the first publish: most connections never publish.
    this.publishAnswers ??= new Map()
    const answers = this.publishAnswers
    let answer = answers.get(room)
    if (answer === undefined) {
      // Bounded like the rooms a connection may hold: the oldest answer goes first.
      if (answers.size >= this.hub.opts.limits.roomsPerConnection) answers.delete(answers.keys().next().value as string)
      answer = ask()
      answers.set(room, answer)
    }
    return answer
  }

  /** A client's `publish`: a registry event, checked against its schema, sent volatile to the room once `authorize` allows. */
  private publish(room: string, event: { type: string; data?: unknown }, id: string | undefined): void {
    const check = this.hub.eventCheck(event.type)
    if (check === undefined) {
      this.invalid(ErrorCode.UnknownType, `unknown event type "${event.type}"`, id)
      return
    }
    if (!check.check(event.data)) {
      this.invalid(ErrorCode.InvalidMessage, `invalid data for "${event.type}" at ${check.explain(event.data)}`, id, room)
      return
    }
    this.invalidInRow = 0
    void this.hub.publishFrom(this, room, event.type, event.data).then(
      (allowed) => {
        if (!allowed) this.sendError(ErrorCode.Forbidden, `not allowed to publish to "${room}"`, id, room)
        else if (id !== undefined) this.sendJson({ type: ServerType.Ack, id, data: null })
      },
      (err: unknown) => {
        this.log.error({ err, room }, 'realtime publish failed')
        this.sendError(ErrorCode.Internal, 'internal error', id, room)
      }
    )
  }

  /** Answers `presence {room}` with the room's members, to a connection that holds the room. */
  private async presence(room: string, id: string | undefined): Promise<void> {
    if (!this.hub.opts.presence(room)) {
      this.sendError(ErrorCode.Forbidden, `presence is not enabled for "${room}"`, id, room)
      return
    }
    if (!this.rooms.has(room)) {
      this.sendError(ErrorCode.Forbidden, `subscribe to "${room}" before asking its presence`, id, room)
      return
    }
    try {
      const members = await this.hub.presence(room)
      this.sendJson({ type: ServerType.Presence, id, room, data: { members } })
    } catch (err) {
      this.log.error({ err, room }, 'realtime presence list failed')
      this.sendError(ErrorCode.Internal, 'internal error', id, room)
    }
  }

  private onReply(msg: Envelope): void {
    this.invalidInRow = 0
    const error = msg.error as { code: string; message: string } | undefined
    // With a room, it answers a question of that room (`ask()`).
    if (msg.room !== undefined) {
      void this.hub.questions.answer(this, msg.room, msg.id as string, msg.data, error)
      return
    }
    if (!this.hub.reply(this, msg.id as string, msg.data, error)) {
      this.sendError(ErrorCode.UnknownRequest, `no pending request "${msg.id}" for this connection`, msg.id)
    }
  }

  /** Runs a `handle()` handler: its value is the ack, a `RealtimeError` its own error, anything else `internal`. */
  private async run(handler: (ctx: never) => unknown, msg: Envelope): Promise<void> {
    try {
      const ctx = { data: msg.data, id: msg.id, connection: this, user: this.user, log: this.log }
      const result = await (handler as (c: typeof ctx) => unknown)(ctx)
      if (msg.id === undefined) return
      // Serialized on its own so that a value JSON cannot hold (a function, a symbol) becomes null, not a missing field.
      const data = JSON.stringify(result) ?? 'null'
      this.sendFrame(Buffer.from(`{"type":"${ServerType.Ack}","id":${JSON.stringify(msg.id)},"data":${data}}`))
    } catch (err) {
      const e = err as { name?: unknown; code?: unknown; message?: unknown } | null
      if (e?.name === 'RealtimeError' && typeof e.code === 'string' && e.code !== '') {
        this.sendError(e.code, String(e.message), msg.id)
      } else {
        this.log.error({ err, type: msg.type }, 'realtime handler failed')
        this.sendError(ErrorCode.Internal, 'internal error', msg.id)
      }
    }
  }

  private async refresh(token: string, id: string | undefined): Promise<void> {
    let user: RealtimeUser
    try {
      user = await this.verifyToken(token)
    } catch (err) {
      this.log.info({ reason: (err as Error).message }, 'realtime token refresh rejected')
      this.sendError(ErrorCode.Unauthorized, (err as Error).message, id)
      return
    }
    if (user.sub !== this.userId) {
      this.log.warn('realtime token refresh for another user rejected')
      this.sendError(ErrorCode.Unauthorized, 'the token is for another user', id)
      return
    }
    this.currentUser = user
    // The new token's claims may answer differently.
    this.publishAnswers = undefined
    this.scheduleExpiry()
    this.log.debug('realtime token refreshed')
    if (id !== undefined) this.sendJson({ type: ServerType.Ack, id, data: { exp: user.exp ?? null } })
  }

  /** Closes with 4001 once the token's `exp` (plus the grace period) passes without a fresh `auth`. */
  private scheduleExpiry(): void {
    clearTimeout(this.expiryTimer)
    const exp = this.currentUser.exp
    if (typeof exp !== 'number' || this.closed) return
    const delay = exp * 1000 + this.hub.opts.tokenExpiryGrace - Date.now()
    if (delay <= 0) {
      this.close(CloseCode.TokenExpired, 'token expired')
      return
    }
    this.expiryTimer = setTimeout(() => this.scheduleExpiry(), Math.min(delay, MAX_TIMER)).unref()
  }

  // Closing

  close(code: number = CloseCode.Normal, reason = ''): void {
    if (this.closed) return
    // What waited goes before the close frame.
    this.flush()
    this.cleanup()
    let fitted = reason
    while (Buffer.byteLength(fitted) > MAX_REASON_BYTES) fitted = fitted.slice(0, -1)
    try {
      this.socket.close(code, fitted)
    } catch (err) {
      // A code a close frame may not carry (e.g. 1005): the connection still ends.
      this.log.warn({ err, code }, 'realtime close code refused; connection terminated')
      this.socket.terminate()
    }
  }

  /** Only the heartbeat calls this, on connections the hub still holds (so never on a closed one). */
  terminate(why: string): void {
    this.log.info({ why }, 'realtime connection terminated')
    this.cleanup()
    this.socket.terminate()
  }

  private onClose(code: number, reason: Buffer): void {
    this.hub.metrics?.closed(code)
    this.cleanup()
    clearTimeout(this.killTimer)
    this.log.info({ code, reason: reason.toString() }, 'realtime connection closed')
  }

  private cleanup(): void {
    if (this.closed) return
    this.closed = true
    for (const ticket of this.joining) ticket.cancelled = true
    clearTimeout(this.expiryTimer)
    this.hub.remove(this)
  }
}
