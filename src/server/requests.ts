import {
  FST_REALTIME_INVALID_OPTION,
  FST_REALTIME_NO_TARGET,
  FST_REALTIME_REQUEST_DISCONNECTED,
  FST_REALTIME_REQUEST_REJECTED,
  FST_REALTIME_REQUEST_TIMEOUT
} from '../errors.js'
import { DEADLINE_RULE, type Deadline, deadline, isDeadline } from '../protocol/deadline.js'
import type { RequestOptions } from '../types.js'
import type { Connection } from './connection.js'
import * as frames from './frames.js'
import type { Hub } from './hub.js'
import { OutboundMessage } from './transport.js'

export interface PendingRequest {
  readonly id: string
  readonly targets: Set<Connection>
  readonly answer: Deadline<unknown>
}

/**
 * Server requests (`app.realtime.request`): a question to one connection or to a room's local members, settled by the
 * first `reply`, by the timeout, or by the last target's disconnect.
 */
export class Requests {
  private readonly pending = new Map<string, PendingRequest>()
  private counter = 0

  constructor(private readonly hub: Hub) {}

  get size(): number {
    return this.pending.size
  }

  request(target: string, event: unknown, options: RequestOptions = {}): Promise<unknown> {
    const timeout = options.timeout ?? this.hub.opts.requestTimeout
    if (!isDeadline(timeout)) throw new FST_REALTIME_INVALID_OPTION(`request timeout must be ${DEADLINE_RULE} (got ${timeout})`)
    const { registry } = this.hub
    const conn = registry.connections.get(target)
    const targets = conn !== undefined ? [conn] : registry.validRoom(target) ? [...(registry.rooms.get(target)?.members ?? [])] : []
    const { type, data } = this.hub.validateEvent(event)
    if (targets.length === 0) return Promise.reject(new FST_REALTIME_NO_TARGET(target))
    const id = `r${++this.counter}`
    // A question someone waits on: written at once, framed once for every target.
    const message = new OutboundMessage(frames.request(type, id, data))
    const pending: PendingRequest = {
      id,
      targets: new Set(targets),
      answer: deadline(timeout, () => this.settle(pending, new FST_REALTIME_REQUEST_TIMEOUT(id, timeout)))
    }
    this.pending.set(id, pending)
    for (const t of targets) {
      t.addPending(pending)
      t.send(message, false, true)
    }
    return pending.answer.promise
  }

  /** A `reply` arrived. Returns false when `conn` was not asked `id` (or it is already settled). */
  reply(conn: Connection, id: string, data: unknown, error: { code: string; message: string } | undefined): boolean {
    const pending = this.pending.get(id)
    if (pending === undefined || !pending.targets.has(conn)) return false
    if (error !== undefined) this.settle(pending, new FST_REALTIME_REQUEST_REJECTED(id, `${error.code}: ${error.message}`))
    else this.settle(pending, undefined, data)
    return true
  }

  /** `conn` closed: the requests only it could answer fail. */
  forget(conn: Connection): void {
    for (const pending of [...conn.pending]) {
      conn.removePending(pending)
      pending.targets.delete(conn)
      if (pending.targets.size === 0) this.settle(pending, new FST_REALTIME_REQUEST_DISCONNECTED(pending.id))
    }
  }

  private settle(pending: PendingRequest, err: Error | undefined, data?: unknown): void {
    this.pending.delete(pending.id)
    for (const t of pending.targets) t.removePending(pending)
    if (err !== undefined) pending.answer.reject(err)
    else pending.answer.resolve(data)
  }
}
