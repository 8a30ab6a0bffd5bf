import type { TSchema } from '@sinclair/typebox'
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import type { Adapter, HistoryPolicy, Outgoing } from '../adapters/adapter.js'
import { FST_REALTIME_ADAPTER_FAILED, FST_REALTIME_INVALID_EVENT, FST_REALTIME_INVALID_HANDLER } from '../errors.js'
import { isSchema } from '../events.js'
import type { ResolvedOptions } from '../options.js'
import { CloseCode, RESERVED_TYPES } from '../protocol/constants.js'
import { type Checker, compile } from '../protocol/schemas.js'
import type { EmitOptions, EmitResult, Handler, RealtimeStats } from '../types.js'
import { authorize } from './authorize.js'
import { ConnectionSlots, releaseSlot } from './caps.js'
import type { Connection } from './connection.js'
import { Control } from './control.js'
import { Delivery } from './delivery.js'
import * as frames from './frames.js'
import { kRooms, Memberships, type RequestWithRooms } from './memberships.js'
import type { Metrics } from './metrics.js'
import { Presence } from './presence.js'
import { Registry } from './registry.js'
import { Requests } from './requests.js'
import { WriteScheduler } from './scheduler.js'
import { Subscriptions } from './subscriptions.js'

export type { PendingRequest } from './requests.js'

/**
 * What the agent features built on the core (questions.ts, runs.ts) serve for it: the client messages that belong to
 * them, and their part of the shutdown. The core does not import them; `agent.ts` plugs them in.
 */
export interface AgentDesk {
  /** `reply {id, room}`: an answer to a question of the room. */
  answer(conn: Connection, room: string, id: string, data: unknown, error: { code: string; message: string } | undefined): Promise<void>
  /** `cancel {room, data: {runId}}`. */
  cancel(conn: Connection, room: string, runId: string, id: string | undefined): Promise<void>
  /** The app is closing. */
  close(): void
}

interface RegisteredHandler {
  /** The data schema given to `handle()`, for the AsyncAPI document. */
  readonly schema: TSchema
  readonly check: Checker
  readonly handler: Handler<unknown, unknown>
}

export interface Counters {
  messagesIn: number
  messagesOut: number
  errors: number
  /** Volatile events not written to a connection that had more than `limits.volatileBytes` waiting. */
  dropped: number
}

/**
 * One instance's real-time state, wired together: what it holds (`registry`), how a subscribe goes (`subscriptions`),
 * the rooms the server decides (`memberships`), how publications reach sockets (`delivery`, `scheduler`), presence,
 * server requests, and the agent features. Every
 * emit is validated and serialized here once and handed to the adapter; the adapter hands every publication (from
 * this instance or another) back to `delivery`.
 */
export class Hub {
  readonly handlers = new Map<string, RegisteredHandler>()
  readonly counters: Counters = { messagesIn: 0, messagesOut: 0, errors: 0, dropped: 0 }
  readonly registry: Registry
  readonly scheduler: WriteScheduler
  readonly subscriptions: Subscriptions
  readonly delivery: Delivery
  readonly presence: Presence
  readonly requests: Requests
  /** Signals between instances, and the agent features built on them. */
  readonly control: Control
  /** The rooms the server puts a user in: `subscriptions` at connect, remembered joins, `join`/`leave` of a user. */
  readonly memberships: Memberships
  /** The places under `limits.connections` and `limits.connectionsPerUser`, shared by every transport's upgrade. */
  readonly slots: ConnectionSlots
  /** The agent features' side of client messages (`agent.ts` plugs them in). */
  features!: AgentDesk
  closing = false
  /** Set by the plugin when `metrics` is on. */
  metrics: Metrics | undefined
  private readonly eventCheckers = new Map<string, Checker>()
  private readonly heartbeatTimer: NodeJS.Timeout
  private readonly reapTimers = new Set<NodeJS.Timeout>()

  constructor(
    readonly opts: ResolvedOptions,
    readonly log: FastifyBaseLogger,
    readonly adapter: Adapter
  ) {
    for (const [type, schema] of Object.entries(opts.events)) this.eventCheckers.set(type, compile(schema))
    this.heartbeatTimer = setInterval(() => this.heartbeat(), opts.heartbeat.interval).unref()
    this.registry = new Registry(opts, log)
    this.scheduler = new WriteScheduler(opts.coalesce)
    this.subscriptions = new Subscriptions(this)
    this.delivery = new Delivery(this)
    this.presence = new Presence(this)
    this.requests = new Requests(this)
    this.control = new Control(adapter, log)
    this.memberships = new Memberships(this)
    this.slots = new ConnectionSlots(this, opts.limits)
  }

  /** Connections of this instance, by id. */
  get connections(): ReadonlyMap<string, Connection> {
    return this.registry.connections
  }

  /**
   * Takes in a connection that passed the checks of its route, whatever its transport: the registry counts it (so its
   * reserved place under the caps goes back), the rooms its user is in are joined, and only then does it start
   * (`ready`), so that an event sent to those rooms once the client has `ready` arrives. `started` runs then. A store
   * that cannot say which rooms closes the connection with 1011.
   */
  admit(conn: Connection, request: FastifyRequest, started?: () => void): void {
    this.registry.add(conn)
    releaseSlot(request)
    this.memberships.restore(conn, (request as RequestWithRooms)[kRooms]).then(
      () => {
        if (conn.closed) return
        conn.start(this.opts.heartbeat.interval)
        started?.()
      },
      (err: unknown) => {
        conn.log.error({ err }, 'realtime rooms of the connection could not be joined')
        conn.close(CloseCode.InternalError, 'rooms could not be joined')
      }
    )
  }

  connectionCount(): number {
    return this.registry.connections.size
  }

  connectionsOf(userId: string): number {
    return this.registry.connectionsOf(userId)
  }

  refused(label: string): void {
    this.metrics?.authFailure(label)
  }

  /** Called once by a closing connection: drops its rooms and fails the requests only it could answer. */
  remove(conn: Connection): void {
    this.registry.delete(conn)
    for (const name of [...conn.rooms]) this.subscriptions.detach(conn, name)
    this.requests.forget(conn)
  }

  // Events

  checkRoom(room: unknown): asserts room is string {
    if (!this.registry.validRoom(room)) throw new FST_REALTIME_INVALID_EVENT(`invalid room name "${String(room).slice(0, 64)}"`)
  }

  /** Checks an event given to the server API (`emit`, `ask`, `stream`, `request`): throws what is wrong with it. */
  validateEvent(event: unknown): { type: string; data: unknown } {
    if (typeof event !== 'object' || event === null) throw new FST_REALTIME_INVALID_EVENT('an event must be an object { type, data }')
    const { type, data } = event as { type: unknown; data: unknown }
    const checker = typeof type === 'string' ? this.eventCheckers.get(type) : undefined
    if (checker === undefined) {
      throw new FST_REALTIME_INVALID_EVENT(`unknown event type "${String(type)}": add it to the events registry`)
    }
    if (this.opts.validate && !checker.check(data)) {
      throw new FST_REALTIME_INVALID_EVENT(`event "${type as string}" has invalid data at ${checker.explain(data)}`)
    }
    return { type: type as string, data }
  }

  /** The compiled schema of a registry event, or undefined for a type the registry does not have. */
  eventChecker(type: string): Checker | undefined {
    return this.eventCheckers.get(type)
  }

  /**
   * A client's `publish`: once `authorize` allows `publish` to the room for this connection (asked once per
   * connection and room), the event goes to the room's members, volatile, with `from` naming the user. Resolves
   * false when not allowed.
   */
  async publishFrom(conn: Connection, room: string, type: string, data: unknown): Promise<boolean> {
    if (!(await conn.mayPublish(room, () => authorize(this.opts, conn, room, 'publish')))) return false
    await this.publish(room, frames.event(type, room, data, true, `,"from":${JSON.stringify(conn.userId)}`))
    return true
  }

  policyOf(room: string): HistoryPolicy {
    return this.registry.rooms.get(room)?.policy ?? this.opts.history.forRoom(room)
  }

  /**
   * Validates and serializes the event once, then hands it to the adapter, which stamps its seq and delivers it to
   * every instance (this one included). A bad event throws here, synchronously; an adapter failure rejects.
   * `fields` are more envelope fields, serialized (`,"id":"q.1"`), for the agent features.
   */
  emit(room: string, event: unknown, options: EmitOptions = {}, fields = ''): Promise<EmitResult> {
    this.checkRoom(room)
    const { type, data } = this.validateEvent(event)
    return this.publish(room, frames.event(type, room, data, options.volatile === true, fields, options.immediate === true))
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

  // Timers

  /**
   * One interval for every connection: ping each, and one timer `timeout` ms later terminates those that
   * have not answered (or sent anything) since. A dead peer is reaped within interval + timeout.
   */
  private heartbeat(): void {
    const round = Date.now()
    for (const conn of this.registry.connections.values()) conn.ping()
    this.presence.refresh()
    // Rounds may overlap when the timeout is longer than the interval; each keeps its own timer.
    const timer = setTimeout(() => {
      this.reapTimers.delete(timer)
      // After a stall, a pong may be waiting in a socket: let the loop read what arrived before judging anyone.
      setImmediate(() => {
        for (const conn of this.registry.connections.values()) {
          if (conn.lastSeen < round) conn.terminate('heartbeat timeout')
        }
      })
    }, this.opts.heartbeat.timeout).unref()
    this.reapTimers.add(timer)
  }

  stats(): RealtimeStats {
    let rooms = 0
    let subscriptions = 0
    for (const room of this.registry.rooms.values()) {
      if (room.members.size > 0) rooms++
      subscriptions += room.members.size
    }
    return {
      connections: this.registry.connections.size,
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
    this.features.close()
    for (const conn of this.registry.connections.values()) conn.close(CloseCode.GoingAway, 'server shutting down')
  }
}
