import type { PresenceChange, PresenceMember } from '../adapters/adapter.js'
import type { Connection } from './connection.js'
import * as frames from './frames.js'
import { callHookSync } from './hooks.js'
import type { Hub } from './hub.js'
import type { Room } from './room.js'

/**
 * Presence: who is in a room, on every instance. Entries live in the adapter with a ttl that the heartbeat refreshes,
 * so the users of a crashed instance leave once their entries expire; every change is announced to the room.
 */
export class Presence {
  /** Presence entries live this long unless a heartbeat refreshes them. */
  private readonly ttl: number

  constructor(private readonly hub: Hub) {
    const { heartbeat } = hub.opts
    this.ttl = 2 * heartbeat.interval + heartbeat.timeout
  }

  /** `conn` joined the room. A `presenceInfo` that throws is logged; the user is present without info. */
  add(conn: Connection, room: Room): void {
    const { presenceInfo } = this.hub.opts
    let info: unknown
    if (presenceInfo !== undefined) {
      const given = callHookSync(conn.log, 'realtime presenceInfo failed', { room: room.name }, () =>
        presenceInfo({ user: conn.user, room: room.name })
      )
      if (given.ok) info = given.value
    }
    const entry = { connectionId: conn.id, userId: conn.userId, info }
    this.hub.adapter.presenceAdd(room.name, entry, this.ttl).then(
      (change) => this.announce(room.name, change),
      (err: unknown) => this.hub.log.warn({ err, room: room.name }, 'realtime presence update failed')
    )
  }

  remove(conn: Connection, room: Room): void {
    this.hub.adapter.presenceRemove(room.name, conn.id).then(
      (change) => this.announce(room.name, change),
      (err: unknown) => this.hub.log.warn({ err, room: room.name }, 'realtime presence update failed')
    )
  }

  /** `presence {room}` from a client, and `app.realtime.presence()`. */
  list(room: string): Promise<PresenceMember[]> {
    this.hub.checkRoom(room)
    return this.hub.adapter.presenceList(room)
  }

  /** Keeps this instance's presence entries alive; entries of a crashed instance expire and their users leave. */
  refresh(): void {
    for (const room of this.hub.registry.rooms.values()) {
      if (!room.presence || room.members.size === 0) continue
      const ids = [...room.members].map((conn) => conn.id)
      this.hub.adapter.presenceRefresh(room.name, ids, this.ttl).then(
        (changes) => {
          for (const change of changes) this.announce(room.name, change)
        },
        (err: unknown) => this.hub.log.warn({ err, room: room.name }, 'realtime presence refresh failed')
      )
    }
  }

  /** Tells the room's members, on every instance, that a user arrived or left (a volatile `join`/`leave`). */
  private announce(room: string, change: PresenceChange | undefined): void {
    if (change === undefined || this.hub.closing) return
    this.hub.adapter
      .publish(room, { volatile: true, frame: frames.presenceChange(room, change) }, this.hub.policyOf(room))
      .catch((err: unknown) => {
        this.hub.log.warn({ err, room }, 'realtime presence announcement failed')
      })
  }
}
