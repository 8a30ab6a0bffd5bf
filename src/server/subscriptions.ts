import type { Publication, StreamPosition } from '../adapters/adapter.js'
import { CloseCode, ErrorCode } from '../protocol/constants.js'
import type { SubscribedMessage } from '../protocol/messages.js'
import type { JoinTarget } from '../types.js'
import { authorize } from './authorize.js'
import type { Connection } from './connection.js'
import * as frames from './frames.js'
import { callHook } from './hooks.js'
import type { Hub } from './hub.js'
import { JoinTicket, type Room } from './room.js'
import { openItems } from './state.js'
import { stateItem } from './state-rooms.js'
import { OutboundMessage } from './transport.js'

type Resume = { since?: number; epoch?: string }

const SNAPSHOT_ATTEMPTS = 3

/**
 * The subscribe pipeline: subscribe → authorize → history or snapshot → attach, and its undoing (unsubscribe,
 * `leave`, a closing connection). It also keeps the adapter subscribed to exactly the rooms this instance needs.
 */
export class Subscriptions {
  constructor(private readonly hub: Hub) {}

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
    if (this.hub.closing) {
      this.hub.registry.rooms.delete(room.name)
      return
    }
    this.syncSubscription(room).catch((err: unknown) => {
      this.hub.log.warn({ err, room: room.name }, 'realtime adapter unsubscribe failed')
    })
  }

  /** Runs subscribe/unsubscribe calls of one room one after another, each only if it still matters. */
  private syncSubscription(room: Room): Promise<void> {
    const step = room.sync.then(async () => {
      if (room.wanted && !room.subscribed) {
        await this.hub.adapter.subscribe(room.name, room.policy)
        room.subscribed = true
      } else if (!room.wanted && room.subscribed) {
        room.subscribed = false
        await this.hub.adapter.unsubscribe(room.name)
      }
      if (!room.wanted && room.idle && this.hub.registry.rooms.get(room.name) === room) this.hub.registry.rooms.delete(room.name)
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
    conn.addRoom(room.name)
    // The room's first member: gaps are found from the position the adapter reported.
    room.position ??= read
    const data: SubscribedMessage['data'] = { seq: reply.position.seq, epoch: reply.position.epoch, recovered: reply.recovered }
    if (reply.snapshot !== undefined) data.snapshot = reply.snapshot
    Object.assign(data, reply.open)
    conn.sendFrame(frames.subscribed(reply.id, room.name, data))
    for (const pub of history) conn.sendOwn(OutboundMessage.of(pub))
    const live = ticket.after(read)
    for (const pub of live.publications) conn.sendOwn(OutboundMessage.of(pub))
    if (room.presence) this.hub.presence.add(conn, room)
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
    const ticket = new JoinTicket(name, this.hub.opts.limits.bufferedBytes)
    conn.addTicket(ticket)
    try {
      await this.admit(conn, ticket, resume, id)
    } finally {
      conn.removeTicket(ticket)
    }
  }

  private async admit(conn: Connection, ticket: JoinTicket, resume: Resume, id: string | undefined): Promise<void> {
    const name = ticket.room
    const allowed = await authorize(this.hub.opts, conn, name, 'subscribe')
    if (ticket.cancelled) {
      this.cancelled(conn, ticket, id)
      return
    }
    if (!allowed) {
      // A denied subscribe to a room already held ends that subscription too: the answer may have changed.
      this.detach(conn, name)
      conn.sendError(ErrorCode.Forbidden, `not allowed to subscribe to "${name}"`, id, name)
      return
    }
    const room = this.hub.registry.room(name)
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
    // State rooms (state-rooms.ts): the room's value, which the `state_patch` events after it change.
    const { adapter } = this.hub
    const [state, doc] = await Promise.all([adapter.stateRead(name), adapter.documentRead?.(name)])
    return { ...openItems(state), ...stateItem(doc) }
  }

  /** The part of a subscribe after `authorize`, while the ticket collects the room's publications. */
  private async join(conn: Connection, room: Room, ticket: JoinTicket, resume: Resume, id: string | undefined): Promise<void> {
    const name = room.name
    await this.want(room)
    const read = await this.hub.adapter.history(name, resume, room.policy)
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
    const snapshotHook = this.hub.opts.snapshot
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
        position = (await this.hub.adapter.history(name, {}, room.policy)).position
        open = await this.openItems(name)
      }
      const call = { log: conn.log, message: 'realtime snapshot hook failed', fields: { room: name }, timeout: this.hub.opts.hookTimeout }
      // The snapshot goes into `subscribed`: one JSON cannot hold fails here, before the connection joins the room.
      const taken = await callHook({ ...call, serialized: true }, () => snapshotHook({ room: name, user: conn.user, connection: conn }))
      if (!taken.ok) {
        if (ticket.cancelled) this.cancelled(conn, ticket, id)
        else conn.sendError(ErrorCode.Internal, 'internal error', id, name)
        return
      }
      snapshot = taken.value
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
    const latest = (await this.hub.adapter.history(name, {}, room.policy)).position
    open = await this.openItems(name)
    this.attach(conn, room, { id, recovered: false, position: latest, snapshot, open }, ticket, latest)
  }

  /** An `unsubscribe` overtook this subscribe: its answer says so (a closed connection gets nothing). */
  private cancelled(conn: Connection, ticket: JoinTicket, id: string | undefined): void {
    if (!conn.closed && id !== undefined) conn.sendFrame(frames.unsubscribed(id, ticket.room))
  }

  /** Rooms held plus subscribes still waiting: past the limit, `too_many_rooms`. This also bounds the waiting ones. */
  private roomsFull(conn: Connection, name: string, id: string | undefined): boolean {
    const max = this.hub.opts.limits.roomsPerConnection
    const waiting = conn.joining.size
    // A room already held may be subscribed again (to resume), but never with more than the limit waiting at once.
    if (waiting < max && (conn.rooms.has(name) || conn.rooms.size + waiting < max)) return false
    conn.sendError(ErrorCode.TooManyRooms, `a connection may hold at most ${max} rooms`, id, name)
    return true
  }

  /** Takes `conn` out of a room it holds. The room's history then outlives it by the ttl, so the client can resume. */
  detach(conn: Connection, name: string): boolean {
    if (!conn.removeRoom(name)) return false
    // A room with a member is never dropped, so a held room is always there.
    const room = this.hub.registry.rooms.get(name) as Room
    room.members.delete(conn)
    if (room.presence) this.hub.presence.remove(conn, room)
    this.release(room)
    return true
  }

  /** `app.realtime.join()`: subscribes connections of this instance from the server, with no `authorize`. */
  async joinTarget(target: JoinTarget, name: string): Promise<number> {
    this.hub.checkRoom(name)
    const conns = this.hub.registry.targets(target).filter((conn) => !conn.rooms.has(name))
    if (conns.length === 0) return 0
    const room = this.hub.registry.room(name)
    const tickets = conns.map(() => new JoinTicket(name, this.hub.opts.limits.bufferedBytes))
    for (const ticket of tickets) room.joiners.add(ticket)
    try {
      await this.want(room)
      const { position } = await this.hub.adapter.history(name, {}, room.policy)
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
    for (const conn of this.hub.registry.targets(target)) {
      if (!this.detach(conn, name)) continue
      conn.sendFrame(frames.unsubscribed(undefined, name))
      left++
    }
    return left
  }
}
