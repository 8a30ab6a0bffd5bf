import type { ResolvedOptions } from '../options.js'
import type { JoinTarget } from '../types.js'
import type { Connection } from './connection.js'
import { Room } from './room.js'

/** What this instance holds: its connections, by id and by user, and the rooms they hold or are joining. */
export class Registry {
  readonly connections = new Map<string, Connection>()
  readonly rooms = new Map<string, Room>()
  private readonly users = new Map<string, Set<Connection>>()

  constructor(private readonly opts: ResolvedOptions) {}

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

  validRoom(room: unknown): room is string {
    const { roomNameMaxLength, roomPattern } = this.opts.limits
    return typeof room === 'string' && room.length > 0 && room.length <= roomNameMaxLength && roomPattern.test(room)
  }

  /** The room, made on first use. */
  room(name: string): Room {
    let room = this.rooms.get(name)
    if (room === undefined) {
      room = new Room(name, this.opts.history.forRoom(name), this.opts.presence(name))
      this.rooms.set(name, room)
    }
    return room
  }
}
