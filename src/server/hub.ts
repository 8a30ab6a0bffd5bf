import type { TSchema } from '@sinclair/typebox'
import type { FastifyBaseLogger } from 'fastify'
import {
  FST_REALTIME_INVALID_EVENT,
  FST_REALTIME_INVALID_HANDLER,
  FST_REALTIME_INVALID_OPTION,
  FST_REALTIME_NO_TARGET,
  FST_REALTIME_REQUEST_DISCONNECTED,
  FST_REALTIME_REQUEST_REJECTED,
  FST_REALTIME_REQUEST_TIMEOUT
} from '../errors.js'
import { isSchema } from '../events.js'
import type { ResolvedOptions } from '../options.js'
import { CloseCode, ErrorCode, RESERVED_TYPES, ServerType } from '../protocol/constants.js'
import { type Checker, compile } from '../protocol/schemas.js'
import type { EmitOptions, EmitResult, Handler, JoinTarget, RealtimeStats, RequestOptions } from '../types.js'
import type { Connection } from './connection.js'
import { Room } from './room.js'

interface RegisteredHandler {
  readonly check: Checker
  readonly handler: Handler<unknown, unknown>
}

export interface PendingRequest {
  readonly id: string
  readonly targets: Set<Connection>
  readonly resolve: (data: unknown) => void
  readonly reject: (err: Error) => void
  /** None for `timeout: Infinity`. */
  readonly timer: NodeJS.Timeout | undefined
}

/** A subscribe in progress on a connection. */
export interface JoinTicket {
  readonly room: string
  cancelled: boolean
}

export interface Counters {
  messagesIn: number
  messagesOut: number
  errors: number
}

const now = (): number => Date.now()
const SNAPSHOT_ATTEMPTS = 3
const MAX_TIMER = 2 ** 31 - 1

/**
 * Local state of one instance: connections, rooms and their history, pending server requests.
 * Every emit is validated, stamped and serialized here once, then written to each member socket.
 */
export class Hub {
  readonly connections = new Map<string, Connection>()
  readonly handlers = new Map<string, RegisteredHandler>()
  readonly counters: Counters = { messagesIn: 0, messagesOut: 0, errors: 0 }
  closing = false
  private readonly rooms = new Map<string, Room>()
  private readonly users = new Map<string, Set<Connection>>()
  private readonly requests = new Map<string, PendingRequest>()
  private readonly eventChecks = new Map<string, Checker>()
  private requestCounter = 0
  private readonly heartbeatTimer: NodeJS.Timeout
  private readonly reapTimers = new Set<NodeJS.Timeout>()
  private readonly sweepTimer: NodeJS.Timeout

  constructor(
    readonly opts: ResolvedOptions,
    readonly log: FastifyBaseLogger
  ) {
    for (const [type, schema] of Object.entries(opts.events)) this.eventChecks.set(type, compile(schema))
    this.heartbeatTimer = setInterval(() => this.heartbeat(), opts.heartbeat.interval).unref()
    // Twice per ttl, so an empty room goes at most 1.5 ttl after its last activity.
    this.sweepTimer = setInterval(() => this.sweep(), Math.max(1, Math.min(Math.floor(opts.history.ttl / 2), 60_000))).unref()
  }

  // Connections

  add(conn: Connection): void {
    this.connections.set(conn.id, conn)
    const own = this.users.get(conn.userId)
    if (own === undefined) this.users.set(conn.userId, new Set([conn]))
    else own.add(conn)
  }

  connectionCount(): number {
    return this.connections.size
  }

  connectionsOf(userId: string): number {
    return this.users.get(userId)?.size ?? 0
  }

  /** Called once by a closing connection: drops its rooms and fails the requests only it could answer. */
  remove(conn: Connection): void {
    this.connections.delete(conn.id)
    const own = this.users.get(conn.userId)
    own?.delete(conn)
    if (own?.size === 0) this.users.delete(conn.userId)
    for (const name of [...conn.rooms]) this.detach(conn, name)
    for (const pending of conn.pending) {
      pending.targets.delete(conn)
      if (pending.targets.size === 0) this.settle(pending, new FST_REALTIME_REQUEST_DISCONNECTED(pending.id))
    }
    conn.pending.clear()
  }

  private resolveTargets(target: JoinTarget): Connection[] {
    if (typeof target === 'string') {
      const conn = this.connections.get(target)
      return conn === undefined ? [] : [conn]
    }
    return [...(this.users.get(target.user) ?? [])]
  }

  // Rooms

  validRoom(room: unknown): room is string {
    const { roomNameMaxLength, roomPattern } = this.opts.limits
    return typeof room === 'string' && room.length > 0 && room.length <= roomNameMaxLength && roomPattern.test(room)
  }

  room(name: string): Room {
    let room = this.rooms.get(name)
    if (room === undefined) {
      room = new Room(name, this.opts.history.forRoom(name), now())
      this.rooms.set(name, room)
    }
    return room
  }

  /**
   * Adds `conn` to the room and sends `subscribed`, then the frames to replay, in one synchronous step:
   * no emit can fall between them, so the client sees no gap and no duplicate.
   */
  attach(
    conn: Connection,
    room: Room,
    reply: { id?: string; recovered: boolean; seq: number; snapshot?: unknown },
    replay: Buffer[]
  ): void {
    room.members.add(conn)
    conn.rooms.add(room.name)
    const data: Record<string, unknown> = { seq: reply.seq, epoch: room.epoch, recovered: reply.recovered }
    if (reply.snapshot !== undefined) data.snapshot = reply.snapshot
    conn.sendJson({ type: ServerType.Subscribed, id: reply.id, room: room.name, data })
    for (const frame of replay) conn.sendFrame(frame)
  }

  /**
   * A client's `subscribe`: authorize, then resume from `since`/`epoch` when the history holds every
   * missed event, else answer `recovered: false` with the snapshot and the events emitted while it was taken.
   * While it waits, a ticket on the connection counts towards the room limit; an `unsubscribe` of the room
   * or the connection closing cancels it, and nothing more is sent for it.
   */
  async subscribe(conn: Connection, name: string, resume: { since?: number; epoch?: string }, id: string | undefined): Promise<void> {
    if (this.roomsFull(conn, name, id)) return
    const ticket: JoinTicket = { room: name, cancelled: false }
    conn.joining.add(ticket)
    try {
      await this.admit(conn, ticket, resume, id)
    } finally {
      conn.joining.delete(ticket)
    }
  }

  private async admit(
    conn: Connection,
    ticket: JoinTicket,
    resume: { since?: number; epoch?: string },
    id: string | undefined
  ): Promise<void> {
    const name = ticket.room
    let allowed = false
    try {
      allowed = (await this.opts.authorize({ user: conn.user, room: name, connection: conn, action: 'subscribe' })) === true
    } catch (err) {
      conn.log.error({ err, room: name }, 'realtime authorize failed; subscription denied')
    }
    if (ticket.cancelled) {
      this.cancelled(conn, ticket, id)
      return
    }
    if (!allowed) {
      conn.log.info({ room: name }, 'realtime subscription denied')
      // A denied subscribe to a room already held ends that subscription too: the answer may have changed.
      this.detach(conn, name)
      conn.sendError(ErrorCode.Forbidden, `not allowed to subscribe to "${name}"`, id, name)
      return
    }
    let room = this.room(name)
    if (resume.since !== undefined && resume.epoch === room.epoch) {
      const missed = room.since(resume.since, now())
      if (missed !== undefined) {
        this.attach(conn, room, { id, recovered: true, seq: resume.since }, missed)
        return
      }
    }
    if (conn.rooms.has(name)) this.detach(conn, name)
    const snapshotHook = this.opts.snapshot
    if (snapshotHook === undefined) {
      this.attach(conn, room, { id, recovered: false, seq: room.seq }, [])
      return
    }
    // Events emitted while the snapshot is taken follow it, so the page applies them on top. When the history
    // cannot cover them (too many, or no history), the snapshot is taken again: it may miss them, never the reverse.
    let snapshot: unknown
    for (let attempt = 0; attempt < SNAPSHOT_ATTEMPTS; attempt++) {
      const { seq, epoch } = room
      try {
        snapshot = await snapshotHook({ room: name, user: conn.user, connection: conn })
      } catch (err) {
        conn.log.error({ err, room: name }, 'realtime snapshot hook failed')
        if (ticket.cancelled) this.cancelled(conn, ticket, id)
        else conn.sendError(ErrorCode.Internal, 'internal error', id, name)
        return
      }
      if (ticket.cancelled) {
        this.cancelled(conn, ticket, id)
        return
      }
      room = this.room(name)
      const during = room.epoch === epoch ? room.since(seq, now()) : undefined
      if (during !== undefined) {
        this.attach(conn, room, { id, recovered: false, seq, snapshot }, during)
        return
      }
    }
    conn.log.warn({ room: name }, 'realtime snapshot kept falling behind the room; events during it may be missing')
    this.attach(conn, room, { id, recovered: false, seq: room.seq, snapshot }, [])
  }

  /** An `unsubscribe` overtook this subscribe: its answer says so (a closed connection gets nothing). */
  private cancelled(conn: Connection, ticket: JoinTicket, id: string | undefined): void {
    if (!conn.closed && id !== undefined) conn.sendJson({ type: ServerType.Unsubscribed, id, room: ticket.room })
  }

  /** Rooms held plus subscribes still waiting: past the limit, `too_many_rooms`. This also bounds the waiting ones. */
  private roomsFull(conn: Connection, name: string, id: string | undefined): boolean {
    const max = this.opts.limits.roomsPerConnection
    const waiting = conn.joining.size
    // A room already held may be subscribed again (to resume), but never with more than the limit waiting at once.
    if (waiting < max && (conn.rooms.has(name) || conn.rooms.size + waiting < max)) return false
    conn.sendError(ErrorCode.TooManyRooms, `a connection may hold at most ${max} rooms`, id, name)
    return true
  }

  /** Takes `conn` out of a room it holds. The room's history then outlives it by the ttl, so the client can resume. */
  detach(conn: Connection, name: string): boolean {
    if (!conn.rooms.delete(name)) return false
    // A room with a member is never swept, so a held room is always there.
    const room = this.rooms.get(name) as Room
    room.members.delete(conn)
    room.lastActivity = now()
    return true
  }

  join(target: JoinTarget, name: string): number {
    this.checkRoom(name)
    let joined = 0
    for (const conn of this.resolveTargets(target)) {
      if (conn.rooms.has(name)) continue
      const room = this.room(name)
      this.attach(conn, room, { recovered: false, seq: room.seq }, [])
      joined++
    }
    return joined
  }

  leave(target: JoinTarget, name: string): number {
    let left = 0
    for (const conn of this.resolveTargets(target)) {
      if (!this.detach(conn, name)) continue
      conn.sendJson({ type: ServerType.Unsubscribed, room: name })
      left++
    }
    return left
  }

  // Events

  private checkRoom(room: unknown): asserts room is string {
    if (!this.validRoom(room)) throw new FST_REALTIME_INVALID_EVENT(`invalid room name "${String(room).slice(0, 64)}"`)
  }

  private checkEvent(event: unknown): { type: string; data: unknown } {
    if (typeof event !== 'object' || event === null) throw new FST_REALTIME_INVALID_EVENT('an event must be an object { type, data }')
    const { type, data } = event as { type: unknown; data: unknown }
    const check = typeof type === 'string' ? this.eventChecks.get(type) : undefined
    if (check === undefined) {
      throw new FST_REALTIME_INVALID_EVENT(`unknown event type "${String(type)}": add it to the events registry`)
    }
    if (this.opts.validate && !check.check(data)) {
      throw new FST_REALTIME_INVALID_EVENT(`event "${type as string}" has invalid data at ${check.explain(data)}`)
    }
    return { type: type as string, data }
  }

  emit(roomName: string, event: unknown, options: EmitOptions = {}): EmitResult {
    this.checkRoom(roomName)
    const { type, data } = this.checkEvent(event)
    const ts = new Date().toISOString()
    if (options.volatile === true) {
      const room = this.rooms.get(roomName)
      const frame = Buffer.from(JSON.stringify({ type, room: roomName, data, ts }))
      const recipients = room === undefined ? 0 : this.deliver(room, frame)
      return { room: roomName, seq: room?.seq ?? 0, epoch: room?.epoch ?? '', recipients }
    }
    const room = this.room(roomName)
    const seq = room.seq + 1
    const frame = Buffer.from(JSON.stringify({ type, room: roomName, seq, data, ts }))
    room.seq = seq
    room.append(frame, now())
    return { room: roomName, seq, epoch: room.epoch, recipients: this.deliver(room, frame) }
  }

  private deliver(room: Room, frame: Buffer): number {
    for (const conn of room.members) conn.sendFrame(frame)
    return room.members.size
  }

  // Client messages

  handle(type: unknown, schema: unknown, handler: unknown): void {
    if (typeof type !== 'string' || type.length === 0 || type.length > 128) {
      throw new FST_REALTIME_INVALID_HANDLER('handle(type): type must be a string of 1 to 128 characters')
    }
    if (RESERVED_TYPES.includes(type)) throw new FST_REALTIME_INVALID_HANDLER(`handle("${type}"): "${type}" is a reserved control type`)
    if (this.handlers.has(type)) throw new FST_REALTIME_INVALID_HANDLER(`handle("${type}"): a handler is already registered`)
    if (!isSchema(schema)) throw new FST_REALTIME_INVALID_HANDLER(`handle("${type}"): schema must be a TypeBox schema`)
    if (typeof handler !== 'function') throw new FST_REALTIME_INVALID_HANDLER(`handle("${type}"): handler must be a function`)
    this.handlers.set(type, { check: compile(schema as TSchema), handler: handler as Handler<unknown, unknown> })
  }

  // Server requests

  request(target: string, event: unknown, options: RequestOptions = {}): Promise<unknown> {
    const timeout = options.timeout ?? this.opts.requestTimeout
    if (timeout !== Number.POSITIVE_INFINITY && !(Number.isInteger(timeout) && timeout > 0 && timeout <= MAX_TIMER)) {
      throw new FST_REALTIME_INVALID_OPTION(
        `request timeout must be a whole number of ms from 1 to ${MAX_TIMER}, or Infinity (got ${timeout})`
      )
    }
    const conn = this.connections.get(target)
    const targets = conn !== undefined ? [conn] : this.validRoom(target) ? [...(this.rooms.get(target)?.members ?? [])] : []
    const { type, data } = this.checkEvent(event)
    if (targets.length === 0) return Promise.reject(new FST_REALTIME_NO_TARGET(target))
    const id = `r${++this.requestCounter}`
    const frame = Buffer.from(JSON.stringify({ type, id, data }))
    return new Promise((resolve, reject) => {
      const pending: PendingRequest = {
        id,
        targets: new Set(targets),
        resolve,
        reject,
        timer:
          timeout === Number.POSITIVE_INFINITY
            ? undefined
            : setTimeout(() => this.settle(pending, new FST_REALTIME_REQUEST_TIMEOUT(id, timeout)), timeout)
      }
      this.requests.set(id, pending)
      for (const t of targets) {
        t.pending.add(pending)
        t.sendFrame(frame)
      }
    })
  }

  /** A `reply` arrived. Returns false when `conn` was not asked `id` (or it is already settled). */
  reply(conn: Connection, id: string, data: unknown, error: { code: string; message: string } | undefined): boolean {
    const pending = this.requests.get(id)
    if (pending === undefined || !pending.targets.has(conn)) return false
    if (error !== undefined) this.settle(pending, new FST_REALTIME_REQUEST_REJECTED(id, `${error.code}: ${error.message}`))
    else this.settle(pending, undefined, data)
    return true
  }

  private settle(pending: PendingRequest, err: Error | undefined, data?: unknown): void {
    clearTimeout(pending.timer)
    this.requests.delete(pending.id)
    for (const t of pending.targets) t.pending.delete(pending)
    if (err !== undefined) pending.reject(err)
    else pending.resolve(data)
  }

  // Timers

  /**
   * One interval for every connection: ping each, and one timer `timeout` ms later terminates those that
   * have not answered (or sent anything) since. A dead peer is reaped within interval + timeout.
   */
  private heartbeat(): void {
    const round = now()
    for (const conn of this.connections.values()) conn.ping()
    // Rounds may overlap when the timeout is longer than the interval; each keeps its own timer.
    const timer = setTimeout(() => {
      this.reapTimers.delete(timer)
      for (const conn of this.connections.values()) {
        if (conn.lastSeen < round) conn.terminate('heartbeat timeout')
      }
    }, this.opts.heartbeat.timeout).unref()
    this.reapTimers.add(timer)
  }

  private sweep(): void {
    const t = now()
    for (const [name, room] of this.rooms) if (room.expired(t)) this.rooms.delete(name)
  }

  stats(): RealtimeStats {
    let rooms = 0
    let subscriptions = 0
    for (const room of this.rooms.values()) {
      if (room.members.size > 0) rooms++
      subscriptions += room.members.size
    }
    return {
      connections: this.connections.size,
      rooms,
      subscriptions,
      ...this.counters,
      pendingRequests: this.requests.size
    }
  }

  /** Closes every connection with 1001 and stops every timer. Idempotent. */
  close(): void {
    this.closing = true
    clearInterval(this.heartbeatTimer)
    clearInterval(this.sweepTimer)
    for (const timer of this.reapTimers) clearTimeout(timer)
    this.reapTimers.clear()
    for (const conn of this.connections.values()) conn.close(CloseCode.GoingAway, 'server shutting down')
  }
}
