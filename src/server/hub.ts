import type { TSchema } from '@sinclair/typebox'
import type { FastifyBaseLogger } from 'fastify'
import type {
  Adapter,
  AdapterHandler,
  HistoryPolicy,
  Outgoing,
  PresenceChange,
  PresenceMember,
  Publication,
  StreamPosition
} from '../adapters/adapter.js'
import {
  FST_REALTIME_ADAPTER_FAILED,
  FST_REALTIME_INVALID_EVENT,
  FST_REALTIME_INVALID_HANDLER,
  FST_REALTIME_INVALID_OPTION,
  FST_REALTIME_NO_TARGET,
  FST_REALTIME_REQUEST_DISCONNECTED,
  FST_REALTIME_REQUEST_REJECTED,
  FST_REALTIME_REQUEST_TIMEOUT
} from '../errors.js'
import { isSchema } from '../events.js'
import type { CoalesceSettings, ResolvedOptions } from '../options.js'
import { CloseCode, ErrorCode, RESERVED_TYPES, ServerType } from '../protocol/constants.js'
import { type Checker, compile } from '../protocol/schemas.js'
import type { EmitOptions, EmitResult, Handler, JoinTarget, RealtimeStats, RequestOptions } from '../types.js'
import type { Connection } from './connection.js'
import { Control } from './control.js'
import { frameAge, frameType, type Metrics } from './metrics.js'
import { OutboundMessage } from './outbound.js'
import { Questions } from './questions.js'
import { JoinTicket, Room } from './room.js'
import { Runs } from './runs.js'
import { openItems } from './state.js'
import { stateItem } from './state-rooms.js'

interface RegisteredHandler {
  /** The data schema given to `handle()`, for the AsyncAPI document. */
  readonly schema: TSchema
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

export interface Counters {
  messagesIn: number
  messagesOut: number
  errors: number
  /** Volatile events not written to a connection that had more than `limits.volatileBytes` waiting. */
  dropped: number
}

type Resume = { since?: number; epoch?: string }

const SNAPSHOT_ATTEMPTS = 3
const MAX_TIMER = 2 ** 31 - 1

/**
 * An event's envelope, serialized once in two parts around where a seq goes: `head` (type, room and any `fields`,
 * already serialized with their leading commas) and `tail` (data and ts). `data` a JSON value cannot hold (undefined,
 * with `validate: false`) is sent as null: an event always has data.
 */
export function envelope(type: string, room: string, data: unknown, fields: string): { head: string; tail: string } {
  const head = JSON.stringify({ type, room }).slice(0, -1) + fields
  return { head, tail: `,"data":${JSON.stringify(data) ?? 'null'},"ts":"${new Date().toISOString()}"}` }
}

/**
 * Local state of one instance: connections, the rooms they hold, pending server requests. Every emit is validated,
 * stamped and serialized here once and handed to the adapter; every publication the adapter hands back (from this
 * instance or another) is written from here to the local subscribers, in seq order, with gaps filled from history.
 */
export class Hub implements AdapterHandler {
  readonly connections = new Map<string, Connection>()
  readonly handlers = new Map<string, RegisteredHandler>()
  readonly counters: Counters = { messagesIn: 0, messagesOut: 0, errors: 0, dropped: 0 }
  /** Signals between instances, and the agent features built on them. */
  readonly control: Control
  readonly runs: Runs
  readonly questions: Questions
  /**
   * Write coalescing: a turn lasts until the end of the event-loop turn in which something was written (or until
   * `coalesce.windowMs` passed). A connection writes its first frame of a turn at once and queues the next ones;
   * the queues are flushed when the turn ends. A turn that begins within `coalesce.windowMs` of the last one's end
   * continues a burst: connections that flushed then queue from their first frame.
   */
  turn = 0
  private turnEnding = false
  private bursting = false
  /** When queues were last flushed at the end of a turn or window. */
  private turnEndedAt = Number.NEGATIVE_INFINITY
  private windowTimer: NodeJS.Timeout | undefined
  private queued: Connection[] = []
  private queuedSince = 0
  closing = false
  /** Set by the plugin when `metrics` is on. */
  metrics: Metrics | undefined
  private readonly rooms = new Map<string, Room>()
  private readonly users = new Map<string, Set<Connection>>()
  private readonly requests = new Map<string, PendingRequest>()
  private readonly eventChecks = new Map<string, Checker>()
  private requestCounter = 0
  private readonly heartbeatTimer: NodeJS.Timeout
  private readonly reapTimers = new Set<NodeJS.Timeout>()
  /** Presence entries live this long unless a heartbeat refreshes them (a crashed instance's go after it). */
  private readonly presenceTtl: number

  constructor(
    readonly opts: ResolvedOptions,
    readonly log: FastifyBaseLogger,
    readonly adapter: Adapter
  ) {
    for (const [type, schema] of Object.entries(opts.events)) this.eventChecks.set(type, compile(schema))
    this.heartbeatTimer = setInterval(() => this.heartbeat(), opts.heartbeat.interval).unref()
    this.presenceTtl = 2 * opts.heartbeat.interval + opts.heartbeat.timeout
    this.control = new Control(adapter, log)
    this.runs = new Runs(opts, this.control, log, (room): room is string => this.validRoom(room))
    this.questions = new Questions(this)
  }

  // Writing

  /** A connection wrote at once in this turn: the turn must end, so that its next frame may too. */
  wrote(): void {
    if (this.turnEnding) return
    this.turnEnding = true
    this.bursting = performance.now() - this.turnEndedAt < (this.opts.coalesce as CoalesceSettings).windowMs
    setImmediate(this.endTurn)
  }

  /** Whether this turn continues a burst (it began soon after the last one ended). */
  inBurst(): boolean {
    this.wrote()
    return this.bursting
  }

  /** A connection started queueing in this turn. */
  waiting(conn: Connection): void {
    if (this.queued.length === 0) this.queuedSince = performance.now()
    this.queued.push(conn)
    this.wrote()
  }

  /**
   * The end of an event-loop turn that wrote. What waited is written now, unless the turn continued a burst and the
   * oldest frame has waited less than `coalesce.windowMs`: then the queues keep filling, across turns, until then.
   */
  private readonly endTurn = (): void => {
    this.turnEnding = false
    if (this.queued.length === 0) {
      this.turn++
      return
    }
    const left = (this.opts.coalesce as CoalesceSettings).windowMs - (performance.now() - this.queuedSince)
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
    for (const conn of queued) conn.flush()
    this.turnEndedAt = performance.now()
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

  refused(label: string): void {
    this.metrics?.authFailure(label)
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

  private room(name: string): Room {
    let room = this.rooms.get(name)
    if (room === undefined) {
      room = new Room(name, this.opts.history.forRoom(name), this.opts.presence(name))
      this.rooms.set(name, room)
    }
    return room
  }

  /** Makes sure the adapter delivers the room's publications here; resolves once it does. */
  private want(room: Room): Promise<void> {
    room.wanted = true
    return this.syncSubscription(room)
  }

  /** The room's last local subscriber (or joiner) is gone: the adapter may stop delivering it. */
  private release(room: Room): void {
    if (!room.idle) return
    room.wanted = false
    // On shutdown the adapter is closed as a whole.
    if (this.closing) {
      this.rooms.delete(room.name)
      return
    }
    this.syncSubscription(room).catch((err: unknown) => {
      this.log.warn({ err, room: room.name }, 'realtime adapter unsubscribe failed')
    })
  }

  /** Runs subscribe/unsubscribe calls of one room one after another, each only if it still matters. */
  private syncSubscription(room: Room): Promise<void> {
    const step = room.sync.then(async () => {
      if (room.wanted && !room.subscribed) {
        await this.adapter.subscribe(room.name, room.policy)
        room.subscribed = true
      } else if (!room.wanted && room.subscribed) {
        room.subscribed = false
        await this.adapter.unsubscribe(room.name)
      }
      if (!room.wanted && room.idle && this.rooms.get(room.name) === room) this.rooms.delete(room.name)
    })
    room.sync = step.catch(() => undefined)
    return step
  }

  /**
   * Adds `conn` to the room and sends `subscribed`, then the missed events from the history and those the ticket
   * collected after `read`, in one synchronous step: no publication can fall between them, so the client sees no
   * gap and no duplicate. When what the ticket collected does not follow on, the client is sent what does and then
   * closed with 4010, to resume from there.
   */
  private attach(
    conn: Connection,
    room: Room,
    reply: { id?: string; recovered: boolean; position: StreamPosition; snapshot?: unknown; open: object },
    ticket: JoinTicket,
    read: StreamPosition,
    history: readonly Publication[] = []
  ): void {
    room.members.add(conn)
    conn.rooms.add(room.name)
    // The room's first member: gaps are found from the position the adapter reported.
    room.position ??= read
    const data: Record<string, unknown> = { seq: reply.position.seq, epoch: reply.position.epoch, recovered: reply.recovered }
    if (reply.snapshot !== undefined) data.snapshot = reply.snapshot
    Object.assign(data, reply.open)
    conn.sendJson({ type: ServerType.Subscribed, id: reply.id, room: room.name, data })
    for (const pub of history) conn.sendFrame(pub.frame)
    const live = ticket.after(read)
    for (const frame of live.frames) conn.sendFrame(frame)
    if (room.presence) this.presenceAdd(conn, room)
    if (!live.complete) conn.close(CloseCode.Resync, 'missed events: resume')
  }

  /**
   * A client's `subscribe`: authorize, then resume from `since`/`epoch` when the history holds every
   * missed event, else answer `recovered: false` with the snapshot and the events published while it was taken.
   * While it waits, a ticket on the connection counts towards the room limit; an `unsubscribe` of the room
   * or the connection closing cancels it, and nothing more is sent for it.
   */
  async subscribe(conn: Connection, name: string, resume: Resume, id: string | undefined): Promise<void> {
    if (this.roomsFull(conn, name, id)) return
    const ticket = new JoinTicket(name, this.opts.limits.bufferedBytes)
    conn.joining.add(ticket)
    try {
      await this.admit(conn, ticket, resume, id)
    } finally {
      conn.joining.delete(ticket)
    }
  }

  private async admit(conn: Connection, ticket: JoinTicket, resume: Resume, id: string | undefined): Promise<void> {
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
    const room = this.room(name)
    room.joiners.add(ticket)
    try {
      await this.join(conn, room, ticket, resume, id)
    } catch (err) {
      conn.log.error({ err, room: name }, 'realtime subscribe failed')
      if (ticket.cancelled) this.cancelled(conn, ticket, id)
      else conn.sendError(ErrorCode.Internal, 'internal error', id, name)
    } finally {
      room.joiners.delete(ticket)
      this.release(room)
    }
  }

  /**
   * The room's open token streams and pending questions, for `subscribed`. Read after the room's position, while the
   * ticket collects: a stream's text or a question missing from it arrives through the ticket instead.
   */
  private async openItems(name: string): Promise<object> {
    // State rooms (src/server/state-rooms.ts): the room's value, which the `state_patch` events after it change.
    const [state, doc] = await Promise.all([this.adapter.stateRead(name), this.adapter.documentRead?.(name)])
    return { ...openItems(state), ...stateItem(doc) }
  }

  /** The part of a subscribe after `authorize`, while the ticket collects the room's publications. */
  private async join(conn: Connection, room: Room, ticket: JoinTicket, resume: Resume, id: string | undefined): Promise<void> {
    const name = room.name
    await this.want(room)
    const read = await this.adapter.history(name, resume, room.policy)
    let open = await this.openItems(name)
    if (ticket.cancelled) {
      this.cancelled(conn, ticket, id)
      return
    }
    if (read.events !== undefined) {
      const position = { seq: resume.since as number, epoch: read.position.epoch }
      this.attach(conn, room, { id, recovered: true, position, open }, ticket, read.position, read.events)
      return
    }
    // Not resumable: the events it holds now are no part of what the client will redraw from.
    if (conn.rooms.has(name)) this.detach(conn, name)
    const snapshotHook = this.opts.snapshot
    if (snapshotHook === undefined) {
      this.attach(conn, room, { id, recovered: false, position: read.position, open }, ticket, read.position)
      return
    }
    // Events published while the snapshot is taken follow it, so the page applies them on top. When more arrive
    // than the ticket may hold, the snapshot is taken again: it may miss them, never the reverse.
    let position = read.position
    let snapshot: unknown
    for (let attempt = 0; attempt < SNAPSHOT_ATTEMPTS; attempt++) {
      if (attempt > 0) {
        ticket.reset()
        position = (await this.adapter.history(name, {}, room.policy)).position
        open = await this.openItems(name)
      }
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
      if (!ticket.overflowed) {
        this.attach(conn, room, { id, recovered: false, position, snapshot, open }, ticket, position)
        return
      }
    }
    conn.log.warn({ room: name }, 'realtime snapshot kept falling behind the room; events during it may be missing')
    ticket.reset()
    const latest = (await this.adapter.history(name, {}, room.policy)).position
    open = await this.openItems(name)
    this.attach(conn, room, { id, recovered: false, position: latest, snapshot, open }, ticket, latest)
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
    // A room with a member is never dropped, so a held room is always there.
    const room = this.rooms.get(name) as Room
    room.members.delete(conn)
    if (room.presence) this.presenceRemove(conn, room)
    this.release(room)
    return true
  }

  /** `app.realtime.join()`: subscribes connections of this instance from the server, with no `authorize`. */
  async joinTarget(target: JoinTarget, name: string): Promise<number> {
    this.checkRoom(name)
    const conns = this.resolveTargets(target).filter((conn) => !conn.rooms.has(name))
    if (conns.length === 0) return 0
    const room = this.room(name)
    const tickets = conns.map(() => new JoinTicket(name, this.opts.limits.bufferedBytes))
    for (const ticket of tickets) room.joiners.add(ticket)
    try {
      await this.want(room)
      const { position } = await this.adapter.history(name, {}, room.policy)
      const open = await this.openItems(name)
      let joined = 0
      for (const [i, conn] of conns.entries()) {
        if (conn.closed || conn.rooms.has(name)) continue
        this.attach(conn, room, { recovered: false, position, open }, tickets[i] as JoinTicket, position)
        joined++
      }
      return joined
    } finally {
      for (const ticket of tickets) room.joiners.delete(ticket)
      this.release(room)
    }
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

  // Publications

  /** From the adapter: an event of a room, in seq order per room. Written to the members, or held while a gap fills. */
  publication(pub: Publication): void {
    const room = this.rooms.get(pub.room)
    if (room === undefined) return
    if (pub.seq === 0) {
      this.dispatch(room, pub)
      return
    }
    if (room.held !== undefined) {
      room.held.push(pub)
      return
    }
    const at = room.position
    if (at === undefined || (pub.epoch === at.epoch && pub.seq === at.seq + 1)) {
      this.dispatch(room, pub)
      return
    }
    // Already written (a gap fill read it from the history first).
    if (pub.epoch === at.epoch && pub.seq <= at.seq) return
    room.held = [pub]
    void this.fill(room)
  }

  /** From the adapter: its link broke and is back. Every held room is checked against its history. */
  resync(): void {
    for (const room of this.rooms.values()) {
      if (room.position === undefined || room.held !== undefined) continue
      room.held = []
      void this.fill(room)
    }
  }

  /** Frames the event once and writes it to every member; a burst's queues wait at most `coalesce.windowMs`. */
  private dispatch(room: Room, pub: Publication): void {
    if (pub.seq > 0) room.position = { seq: pub.seq, epoch: pub.epoch }
    const message = new OutboundMessage(pub.frame, this.opts.deflate)
    const volatile = pub.seq === 0
    const immediate = pub.immediate === true
    let sent = 0
    for (const conn of room.members) if (conn.send(message, volatile, immediate)) sent++
    for (const ticket of room.joiners) ticket.push(pub)
    if (this.metrics !== undefined) {
      this.metrics.sent(frameType(pub.frame), sent)
      this.metrics.delivered(sent, frameAge(pub.frame, Date.now()))
    }
    const { coalesce } = this.opts
    if (this.queued.length > 0 && performance.now() - this.queuedSince >= (coalesce as CoalesceSettings).windowMs) this.flushAll()
  }

  /**
   * Writes the events between the room's position and the held publications, read from the history. When the
   * history no longer has them, the members cannot be made whole here: they are closed with 4010, reconnect and
   * resume, and learn `recovered: false`. Never a silent gap.
   */
  private async fill(room: Room): Promise<void> {
    const at = room.position as StreamPosition
    let events: readonly Publication[] | undefined
    let position: StreamPosition | undefined
    try {
      const read = await this.adapter.history(room.name, { since: at.seq, epoch: at.epoch }, room.policy)
      events = read.events
      position = read.position
    } catch (err) {
      this.log.warn({ err, room: room.name }, 'realtime history read failed while filling a gap')
    }
    if (events !== undefined) {
      for (const pub of events) this.dispatch(room, pub)
    } else {
      this.log.warn({ room: room.name, members: room.members.size, at, position }, 'realtime missed events the history no longer holds')
      for (const conn of room.members) conn.close(CloseCode.Resync, 'missed events: resume')
      room.position = position
    }
    const held = room.held as Publication[]
    room.held = undefined
    for (const pub of held) this.publication(pub)
  }

  // Presence

  private presenceAdd(conn: Connection, room: Room): void {
    const entry = { connectionId: conn.id, userId: conn.userId, info: this.opts.presenceInfo?.({ user: conn.user, room: room.name }) }
    this.adapter.presenceAdd(room.name, entry, this.presenceTtl).then(
      (change) => this.announce(room.name, change),
      (err: unknown) => this.log.warn({ err, room: room.name }, 'realtime presence update failed')
    )
  }

  private presenceRemove(conn: Connection, room: Room): void {
    this.adapter.presenceRemove(room.name, conn.id).then(
      (change) => this.announce(room.name, change),
      (err: unknown) => this.log.warn({ err, room: room.name }, 'realtime presence update failed')
    )
  }

  /** Tells the room's members, on every instance, that a user arrived or left (a volatile `join`/`leave`). */
  private announce(room: string, change: PresenceChange | undefined): void {
    if (change === undefined || this.closing) return
    const frame = JSON.stringify({ type: change.kind === 'join' ? ServerType.Join : ServerType.Leave, room, data: change.member })
    this.adapter.publish(room, { volatile: true, frame }, this.policyOf(room)).catch((err: unknown) => {
      this.log.warn({ err, room }, 'realtime presence announcement failed')
    })
  }

  /** `presence {room}` from a client, and `app.realtime.presence()`. */
  presence(room: string): Promise<PresenceMember[]> {
    this.checkRoom(room)
    return this.adapter.presenceList(room)
  }

  // Events

  checkRoom(room: unknown): asserts room is string {
    if (!this.validRoom(room)) throw new FST_REALTIME_INVALID_EVENT(`invalid room name "${String(room).slice(0, 64)}"`)
  }

  checkEvent(event: unknown): { type: string; data: unknown } {
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

  /** The compiled schema of a registry event, or undefined for a type the registry does not have. */
  eventCheck(type: string): Checker | undefined {
    return this.eventChecks.get(type)
  }

  /**
   * A client's `publish`: once `authorize` allows `publish` to the room for this connection (asked once per
   * connection and room), the event goes to the room's members, volatile, with `from` naming the user. Resolves
   * false when not allowed.
   */
  async publishFrom(conn: Connection, room: string, type: string, data: unknown): Promise<boolean> {
    if (!(await conn.mayPublish(room, () => this.authorizePublish(conn, room)))) return false
    const { head, tail } = envelope(type, room, data, `,"from":${JSON.stringify(conn.userId)}`)
    await this.publish(room, { volatile: true, frame: head + tail })
    return true
  }

  private async authorizePublish(conn: Connection, room: string): Promise<boolean> {
    try {
      if ((await this.opts.authorize({ user: conn.user, room, connection: conn, action: 'publish' })) === true) return true
    } catch (err) {
      conn.log.error({ err, room }, 'realtime authorize failed; publish denied')
      return false
    }
    conn.log.info({ room }, 'realtime publish denied')
    return false
  }

  policyOf(room: string): HistoryPolicy {
    return this.rooms.get(room)?.policy ?? this.opts.history.forRoom(room)
  }

  /**
   * Validates and serializes the event once, then hands it to the adapter, which stamps its seq and delivers it to
   * every instance (this one included). A bad event throws here, synchronously; an adapter failure rejects.
   * `fields` are more envelope fields, serialized (`,"id":"q.1"`), for the agent features.
   */
  emit(room: string, event: unknown, options: EmitOptions = {}, fields = ''): Promise<EmitResult> {
    this.checkRoom(room)
    const { type, data } = this.checkEvent(event)
    const { head, tail } = envelope(type, room, data, fields)
    const immediate = options.immediate === true
    return this.publish(
      room,
      options.volatile === true
        ? { volatile: true, frame: head + tail, immediate }
        : { volatile: false, head: `${head},"seq":`, tail, immediate }
    )
  }

  /** Hands a serialized message to the adapter; its failure becomes `FST_REALTIME_ADAPTER_FAILED`. */
  publish(room: string, outgoing: Outgoing): Promise<EmitResult> {
    return this.adapter.publish(room, outgoing, this.policyOf(room)).then(
      (position) => ({ room, seq: position.seq, epoch: position.epoch }),
      (err: unknown) => {
        throw new FST_REALTIME_ADAPTER_FAILED(this.adapter.name, String(err), { cause: err })
      }
    )
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
    this.handlers.set(type, { schema: schema as TSchema, check: compile(schema as TSchema), handler: handler as Handler<unknown, unknown> })
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
    // A question someone waits on: written at once, framed once for every target.
    const message = new OutboundMessage(Buffer.from(JSON.stringify({ type, id, data })), this.opts.deflate)
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
        t.send(message, false, true)
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
    const round = Date.now()
    for (const conn of this.connections.values()) conn.ping()
    this.refreshPresence()
    // Rounds may overlap when the timeout is longer than the interval; each keeps its own timer.
    const timer = setTimeout(() => {
      this.reapTimers.delete(timer)
      // After a stall, a pong may be waiting in a socket: let the loop read what arrived before judging anyone.
      setImmediate(() => {
        for (const conn of this.connections.values()) {
          if (conn.lastSeen < round) conn.terminate('heartbeat timeout')
        }
      })
    }, this.opts.heartbeat.timeout).unref()
    this.reapTimers.add(timer)
  }

  /** Keeps this instance's presence entries alive; entries of a crashed instance expire and their users leave. */
  private refreshPresence(): void {
    for (const room of this.rooms.values()) {
      if (!room.presence || room.members.size === 0) continue
      const ids = [...room.members].map((conn) => conn.id)
      this.adapter.presenceRefresh(room.name, ids, this.presenceTtl).then(
        (changes) => {
          for (const change of changes) this.announce(room.name, change)
        },
        (err: unknown) => this.log.warn({ err, room: room.name }, 'realtime presence refresh failed')
      )
    }
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
    for (const timer of this.reapTimers) clearTimeout(timer)
    this.reapTimers.clear()
    this.questions.close()
    for (const conn of this.connections.values()) conn.close(CloseCode.GoingAway, 'server shutting down')
  }
}
