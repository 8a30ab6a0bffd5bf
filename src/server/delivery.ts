import type { Publication, StreamPosition } from '../adapters/adapter.js'
import { CloseCode } from '../protocol/constants.js'
import type { Hub } from './hub.js'
import { frameAge, frameType } from './metrics.js'
import type { Room } from './room.js'
import { OutboundMessage } from './transport.js'

/**
 * Delivery of the rooms' publications to the local members: in seq order per room, gaps filled from the history,
 * a resync after the adapter's link came back, and the fan-out (one message per publication, shared by every member).
 */
export class Delivery {
  constructor(private readonly hub: Hub) {}

  /** From the adapter: an event of a room, in seq order per room. Written to the members, or held while a gap fills. */
  publication(pub: Publication): void {
    const room = this.hub.registry.rooms.get(pub.room)
    if (room === undefined) return
    if (pub.seq === 0) {
      this.fanOut(room, pub)
      return
    }
    if (room.held !== undefined) {
      room.held.push(pub)
      return
    }
    const at = room.position
    if (at === undefined || (pub.epoch === at.epoch && pub.seq === at.seq + 1)) {
      this.fanOut(room, pub)
      return
    }
    // Already written (a gap fill read it from the history first).
    if (pub.epoch === at.epoch && pub.seq <= at.seq) return
    room.held = [pub]
    void this.fill(room)
  }

  /** From the adapter: its link broke and is back. Every held room is checked against its history. */
  resync(): void {
    for (const room of this.hub.registry.rooms.values()) {
      if (room.position === undefined || room.held !== undefined) continue
      room.held = []
      void this.fill(room)
    }
  }

  /** Writes the publication to every member (one message for all) and hands it to the subscribes in progress. */
  private fanOut(room: Room, pub: Publication): void {
    if (pub.seq > 0) room.position = { seq: pub.seq, epoch: pub.epoch }
    const message = OutboundMessage.of(pub)
    const volatile = pub.seq === 0
    const immediate = pub.immediate === true
    let sent = 0
    for (const conn of room.members) if (conn.send(message, volatile, immediate)) sent++
    for (const ticket of room.joiners) ticket.push(pub)
    const { metrics } = this.hub
    if (metrics !== undefined) {
      metrics.sent(frameType(pub.frame), sent)
      metrics.delivered(sent, frameAge(pub.frame, Date.now()))
    }
    this.hub.scheduler.fannedOut()
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
      const read = await this.hub.adapter.history(room.name, { since: at.seq, epoch: at.epoch }, room.policy)
      events = read.events
      position = read.position
    } catch (err) {
      this.hub.log.warn({ err, room: room.name }, 'realtime history read failed while filling a gap')
    }
    if (events !== undefined) {
      for (const pub of events) this.fanOut(room, pub)
    } else {
      this.hub.log.warn({ room: room.name, members: room.members.size, at, position }, 'realtime missed events the history no longer holds')
      for (const conn of room.members) conn.close(CloseCode.Resync, 'missed events: resume')
      room.position = position
    }
    const held = room.held as Publication[]
    room.held = undefined
    for (const pub of held) this.publication(pub)
  }
}
