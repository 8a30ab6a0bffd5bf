import type { FastifyBaseLogger } from 'fastify'
import secureJson from 'secure-json-parse'
import { clientChecks } from '../protocol/catalog.js'
import { CloseCode, ErrorCode } from '../protocol/constants.js'
import { MAX_TIMER } from '../protocol/deadline.js'
import { checkEnvelope } from '../protocol/schemas.js'
import type { RealtimeConnection, RealtimeUser } from '../types.js'
import { route } from './client-messages.js'
import * as frames from './frames.js'
import type { Hub, PendingRequest } from './hub.js'
import { frameType } from './metrics.js'
import type { JoinTicket } from './room.js'
import type { Outbox } from './scheduler.js'
import { OutboundMessage, type Transport } from './transport.js'

/** A client message whose envelope has been checked. */
export interface Envelope {
  type: string
  id?: string
  room?: string
  data?: unknown
  error?: unknown
}

/** Verifies a token sent in an `auth` message; rejects with a message that is safe to send to the client. */
export type VerifyToken = (token: string) => Promise<RealtimeUser>

const PARSE_OPTIONS = { protoAction: 'error', constructorAction: 'error' } as const

/**
 * One client connection: the session, whatever its transport (see `transport.ts`). Listeners are attached in the
 * constructor, synchronously after the upgrade, so no message is missed; every exit goes through `cleanup()`, which
 * runs once.
 */
export class Connection implements RealtimeConnection {
  private readonly held = new Set<string>()
  private readonly asked = new Set<PendingRequest>()
  private readonly tickets = new Set<JoinTicket>()
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
  /** Messages waiting for the end of the turn (the scheduler decides when they go). */
  private readonly outbox: Outbox

  constructor(
    readonly id: string,
    private readonly transport: Transport,
    user: RealtimeUser,
    readonly log: FastifyBaseLogger,
    private readonly hub: Hub,
    private readonly verifyToken: VerifyToken
  ) {
    this.currentUser = user
    this.tokens = hub.opts.limits.burst
    this.outbox = hub.scheduler.outbox(transport)
    transport.listen({
      message: (data, isBinary) => this.onMessage(data, isBinary),
      alive: () => {
        this.lastSeen = Date.now()
      },
      closed: (code, reason) => this.onClose(code, reason)
    })
  }

  /**
   * Called once the hub holds the connection and it is in its rooms at connect: greets the client and arms the token
   * expiry (which may close it at once).
   */
  start(heartbeatMs: number): void {
    this.log.info('realtime connection opened')
    const { maxPayload } = this.hub.opts.limits
    // The rooms joined at connect answered `subscribed` already: held back until now, they follow `ready`.
    this.outbox.open(() => this.sendFrame(frames.ready({ connectionId: this.id, userId: this.userId, heartbeatMs, maxPayload })))
    this.scheduleExpiry()
  }

  // What the connection holds; the subscribe pipeline and the server requests change it through these methods.

  /** Rooms this connection receives events of. */
  get rooms(): ReadonlySet<string> {
    return this.held
  }

  /** Server requests waiting for this connection's reply. */
  get pending(): ReadonlySet<PendingRequest> {
    return this.asked
  }

  /** Subscribes still waiting for `authorize` or the snapshot. */
  get joining(): ReadonlySet<JoinTicket> {
    return this.tickets
  }

  addRoom(room: string): void {
    this.held.add(room)
  }

  /** Returns whether the connection held the room. */
  removeRoom(room: string): boolean {
    return this.held.delete(room)
  }

  addPending(request: PendingRequest): void {
    this.asked.add(request)
  }

  removePending(request: PendingRequest): void {
    this.asked.delete(request)
  }

  addTicket(ticket: JoinTicket): void {
    this.tickets.add(ticket)
  }

  removeTicket(ticket: JoinTicket): void {
    this.tickets.delete(ticket)
  }

  get user(): RealtimeUser {
    return this.currentUser
  }

  get userId(): string {
    return this.currentUser.sub
  }

  // Writing

  /** Sends one serialized message built for this connection alone (a reply). Never throws. */
  sendFrame(payload: Buffer, immediate = false): void {
    this.sendOwn(new OutboundMessage(payload), immediate)
  }

  /** Sends a message to this connection alone (a reply, an event replayed from the history). Never throws. */
  sendOwn(message: OutboundMessage, immediate = false): void {
    if (this.send(message, false, immediate)) this.hub.metrics?.sent(frameType(message.payload), 1)
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
    const size = this.transport.size(message)
    const { limits } = this.hub.opts
    // Only data already waiting counts against the client: one large event to an idle socket is not slowness.
    const queued = this.outbox.bytes + this.transport.bufferedAmount
    if (queued > 0) {
      if (queued + size > limits.bufferedBytes) {
        this.slowConsumer(queued)
        return false
      }
      if (volatile && queued + size > limits.volatileBytes) {
        this.hub.counters.dropped++
        return false
      }
    }
    this.hub.counters.messagesOut++
    this.outbox.push(message, size, immediate)
    return true
  }

  /** Writes what waited for the end of the turn now. */
  flush(): void {
    this.outbox.flush()
  }

  private slowConsumer(queued: number): void {
    this.log.warn({ bufferedAmount: queued }, 'realtime slow consumer disconnected')
    this.outbox.drop()
    this.close(CloseCode.SlowConsumer, 'slow consumer')
    // A client that reads nothing never reads the close frame either.
    this.killTimer = setTimeout(() => this.transport.terminate(), 1000).unref()
  }

  sendError(code: string, message: string, id?: string, room?: string): void {
    this.hub.counters.errors++
    this.hub.metrics?.error(code)
    this.sendFrame(frames.error(code, message, id, room))
  }

  ping(): void {
    if (!this.closed) this.transport.ping()
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
    route(this, this.hub, envelope)
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

  /** A valid message arrived: the count of invalid ones in a row starts over. */
  valid(): void {
    this.invalidInRow = 0
  }

  /** Replies with an error; past `limits.maxInvalidMessages` in a row, closes with 1008. */
  invalid(code: string, message: string, id?: string, room?: string): void {
    if (++this.invalidInRow > this.hub.opts.limits.maxInvalidMessages) {
      this.close(CloseCode.PolicyViolation, 'too many invalid messages')
      return
    }
    this.sendError(code, message, id, room)
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

  /** An `auth` message: a fresh token for the same user. */
  async refresh(token: string, id: string | undefined): Promise<void> {
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
    if (id !== undefined) this.sendFrame(frames.ack(id, { exp: user.exp ?? null }))
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
    this.transport.close(code, reason)
  }

  /** Only the heartbeat calls this, on connections the hub still holds (so never on a closed one). */
  terminate(why: string): void {
    this.log.info({ why }, 'realtime connection terminated')
    this.cleanup()
    this.transport.terminate()
  }

  private onClose(code: number, reason: string): void {
    this.hub.metrics?.closed(code)
    this.cleanup()
    clearTimeout(this.killTimer)
    this.log.info({ code, reason }, 'realtime connection closed')
  }

  private cleanup(): void {
    if (this.closed) return
    this.closed = true
    for (const ticket of this.joining) ticket.cancelled = true
    clearTimeout(this.expiryTimer)
    this.hub.remove(this)
  }
}
