import { randomUUID } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import {
  FST_REALTIME_ADAPTER_FAILED,
  FST_REALTIME_INVALID_EVENT,
  FST_REALTIME_INVALID_OPTION,
  FST_REALTIME_SUBSCRIPTIONS_FAILED
} from '../errors.js'
import type { EmitOptions, EmitResult, EmitTarget, JoinOptions, JoinTarget, RealtimeUser } from '../types.js'
import { kUser, type RequestWithUser } from './auth.js'
import type { Connection } from './connection.js'
import type { Signal } from './control.js'
import { callHook } from './hooks.js'
import type { Hub } from './hub.js'

/** The rooms `subscriptions` gave for an upgrade, handed from its `preValidation` hook to the WebSocket handler. */
export const kRooms = Symbol('fastify-realtime.rooms')
export type RequestWithRooms = FastifyRequest & { [kRooms]?: readonly string[] }

type MemberSignal = Extract<Signal, { kind: 'member' }>

/** Remembered joins are kept this long after the user's last one (a timer's longest delay, about 24.8 days). */
const REMEMBER_TTL = 2 ** 31 - 1
/**
 * A user's remembered rooms are fields of the adapter's shared state under this internal name; its NUL character is
 * one no client room can hold, so no client can subscribe to it or read it.
 */
const userState = (user: string): string => `\u0000realtime:user:${user}`
const FIELD = 'm:'

/**
 * Rooms a user is in because the server says so: the `subscriptions` option, asked at every connect, and joins made
 * with `join()`, remembered for the user in the adapter's shared state (so on every instance, with Redis) and joined
 * again at each of their connects until `leave()`. A join or leave of `{ user }` reaches their connections on every
 * instance through a `member` signal. `subscriptions.ts` does the joining; this module decides what to join.
 */
export class Memberships {
  /** Tells this instance's own signals apart: it has acted on them already. */
  private readonly instance = randomUUID()

  constructor(private readonly hub: Hub) {
    hub.control.on('member', (signal) => this.received(signal as MemberSignal))
  }

  /** The `preValidation` step after authentication: asks `subscriptions` and checks what it gives. */
  readonly atConnect = async (request: FastifyRequest): Promise<void> => {
    const subscriptions = this.hub.opts.subscriptions
    if (subscriptions === undefined) return
    const user = (request as RequestWithUser)[kUser] as RealtimeUser
    const given = await callHook(request.log, 'realtime subscriptions failed', {}, () => subscriptions(user, request))
    if (!given.ok) throw new FST_REALTIME_SUBSCRIPTIONS_FAILED()
    const rooms: unknown = given.value
    const bad = Array.isArray(rooms) ? rooms.find((room) => !this.hub.registry.validRoom(room)) : rooms
    if (!Array.isArray(rooms) || bad !== undefined) {
      request.log.error({ got: String(bad).slice(0, 64) }, 'realtime subscriptions must return an array of valid room names')
      throw new FST_REALTIME_SUBSCRIPTIONS_FAILED()
    }
    ;(request as RequestWithRooms)[kRooms] = rooms as string[]
  }

  /**
   * Joins a new connection to its rooms: those `subscriptions` gave and those remembered for its user. Read after the
   * hub holds the connection, so a join made meanwhile either is in what is read or reaches it by its signal.
   */
  async restore(conn: Connection, given: readonly string[] = []): Promise<void> {
    const rooms = new Set([...given, ...(await this.remembered(conn.userId))])
    await Promise.all([...rooms].map((room) => this.hub.subscriptions.joinTarget(conn.id, room)))
  }

  private async remembered(user: string): Promise<string[]> {
    const state = await this.hub.adapter.stateRead(userState(user))
    return Object.keys(state)
      .filter((field) => field.startsWith(FIELD))
      .map((field) => field.slice(FIELD.length))
  }

  /** `app.realtime.join()`: remembered for the user unless `remember` is false, then joined here and, for `{ user }`, everywhere. */
  async join(target: JoinTarget, room: string, options: JoinOptions = {}): Promise<number> {
    this.hub.checkRoom(room)
    const { remember = true } = options
    if (typeof remember !== 'boolean')
      throw new FST_REALTIME_INVALID_OPTION(`join() option "remember" must be a boolean (got ${typeof remember})`)
    if (remember) await this.remember(target, room, '1')
    const joined = await this.hub.subscriptions.joinTarget(target, room)
    if (typeof target !== 'string') await this.signal(target.user, room, true)
    return joined
  }

  /** `app.realtime.leave()`: forgotten for the user, left here and, for `{ user }`, everywhere. */
  async leave(target: JoinTarget, room: string): Promise<number> {
    this.hub.checkRoom(room)
    await this.remember(target, room, null)
    const left = this.hub.subscriptions.leave(target, room)
    if (typeof target !== 'string') await this.signal(target.user, room, false)
    return left
  }

  /** Writes or deletes the room in the user's remembered rooms; a connection id names its user (on this instance). */
  private async remember(target: JoinTarget, room: string, value: string | null): Promise<void> {
    const user = typeof target === 'string' ? this.hub.connections.get(target)?.userId : target.user
    if (user === undefined) return
    try {
      await this.hub.adapter.stateWrite(userState(user), { [FIELD + room]: value }, REMEMBER_TTL)
    } catch (err) {
      throw new FST_REALTIME_ADAPTER_FAILED(this.hub.adapter.name, String(err), { cause: err })
    }
  }

  private async signal(user: string, room: string, joined: boolean): Promise<void> {
    try {
      await this.hub.control.send({ kind: 'member', user, room, joined, from: this.instance })
    } catch (err) {
      throw new FST_REALTIME_ADAPTER_FAILED(this.hub.adapter.name, String(err), { cause: err })
    }
  }

  private received(signal: MemberSignal): void {
    if (signal.from === this.instance) return
    const target = { user: signal.user }
    if (!signal.joined) {
      this.hub.subscriptions.leave(target, signal.room)
      return
    }
    this.hub.subscriptions.joinTarget(target, signal.room).catch((err: unknown) => {
      this.hub.log.warn({ err, room: signal.room }, 'realtime join from another instance failed')
    })
  }
}

/**
 * `app.realtime.emit()` to a room, to several (`[a, b]`: each its own event, seq and history; all checked before any
 * is sent) or to a user (`{ user }`: the room `user:<id>`).
 */
export function emitTo(hub: Hub, target: EmitTarget, event: unknown, options?: EmitOptions): Promise<EmitResult> | Promise<EmitResult[]> {
  if (typeof target === 'string') return hub.emit(target, event, options)
  if (Array.isArray(target)) {
    const rooms = [...new Set(target as readonly unknown[])]
    for (const room of rooms) hub.checkRoom(room)
    hub.validateEvent(event)
    return Promise.all(rooms.map((room) => hub.emit(room as string, event, options)))
  }
  const user = (target as { user?: unknown } | null)?.user
  if (typeof user !== 'string' || user === '') {
    throw new FST_REALTIME_INVALID_EVENT('emit() takes a room, an array of rooms or { user: <id> }')
  }
  return hub.emit(`user:${user}`, event, options)
}
