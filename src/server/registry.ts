import type { FastifyBaseLogger } from 'fastify'
import type { ResolvedOptions } from '../options.js'
import type { JoinTarget } from '../types.js'
import type { Connection } from './connection.js'
import { callHookSync } from './hooks.js'
import { Room } from './room.js'

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/

/** What this instance holds: its connections, by id and by user, and the rooms they hold or are joining. */
export class Registry {
  readonly connections = new Map<string, Connection>()
  readonly rooms = new Map<string, Room>()
  private readonly users = new Map<string, Set<Connection>>()

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly log: FastifyBaseLogger
  ) {}

  add(conn: Connection): void {
    this.connections.set(conn.id, conn)
    const own = this.users.get(conn.userId)
    if (own === undefined) this.users.set(conn.userId, new Set([conn]))
    else own.add(conn)
  }

  delete(conn: Connection): void {
    this.connections.delete(conn.id)
    const own = this.users.get(conn.userId)
    own?.delete(conn)
    if (own?.size === 0) this.users.delete(conn.userId)
  }

  connectionsOf(userId: string): number {
    return this.users.get(userId)?.size ?? 0
  }

  /** A connection id, or every connection of a user, on this instance. */
  targets(target: JoinTarget): Connection[] {
    if (typeof target === 'string') {
      const conn = this.connections.get(target)
      return conn === undefined ? [] : [conn]
    }
    return [...(this.users.get(target.user) ?? [])]
  }

  /** Control characters are refused whatever `limits.roomPattern` allows: the internal control room starts with one. */
  validRoom(room: unknown): room is string {
    const { roomNameMaxLength, roomPattern } = this.opts.limits
    return (
      typeof room === 'string' &&
      room.length > 0 &&
      room.length <= roomNameMaxLength &&
      !CONTROL_CHARACTER.test(room) &&
      roomPattern.test(room)
    )
  }

  /** The room, made on first use. */
  room(name: string): Room {
    let room = this.rooms.get(name)
    if (room === undefined) {
      // The app's predicate, through the hook wrapper (a promise is refused and silenced). A failure fails the caller's
      // subscribe or join as a whole, which logs it: not logged twice here.
      const presence = callHookSync({ log: this.log, message: '', fields: {}, expected: () => true }, () => this.opts.presence(name))
      if (!presence.ok) throw presence.error
      room = new Room(name, this.opts.history.forRoom(name), presence.value === true)
      this.rooms.set(name, room)
    }
    return room
  }
}
