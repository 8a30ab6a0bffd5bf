import type { FastifyBaseLogger } from 'fastify'
import { FST_REALTIME_ADAPTER_FAILED, FST_REALTIME_INVALID_EVENT, FST_REALTIME_RUN_CANCELLED } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import { ErrorCode } from '../protocol/constants.js'
import type { RunTarget } from '../types.js'
import { authorize } from './authorize.js'
import type { Connection } from './connection.js'
import type { Control, Signal } from './control.js'
import * as frames from './frames.js'

/**
 * Runs that can be cancelled: `run()` gives the run's code an `AbortSignal`, and a `cancel` (from a client, through
 * `authorize` with `action: 'cancel'`, or from the application) aborts it on whichever instance it runs.
 */
export class Runs {
  /** Active runs by room, then by run id. One run id may be running more than once. */
  private readonly active = new Map<string, Map<string, Set<AbortController>>>()

  constructor(
    private readonly opts: ResolvedOptions,
    private readonly control: Control,
    private readonly log: FastifyBaseLogger,
    private readonly validRoom: (room: unknown) => room is string
  ) {
    control.on('cancel', (signal) => this.abort(signal as Extract<Signal, { kind: 'cancel' }>))
  }

  private check(target: unknown): RunTarget {
    const { room, runId } = (target ?? {}) as Partial<RunTarget>
    if (!this.validRoom(room)) throw new FST_REALTIME_INVALID_EVENT(`invalid room name "${String(room).slice(0, 64)}"`)
    if (typeof runId !== 'string' || runId.length === 0 || runId.length > 256) {
      throw new FST_REALTIME_INVALID_EVENT('a run id must be a string of 1 to 256 characters')
    }
    return { room, runId }
  }

  /** Runs `fn` with a signal that a `cancel` of `runId` in `room` aborts; the run is cancellable until `fn` settles. */
  async run<T>(target: RunTarget, fn: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
    const { room, runId } = this.check(target)
    const controller = new AbortController()
    const runs = this.active.get(room) ?? new Map<string, Set<AbortController>>()
    this.active.set(room, runs)
    const same = runs.get(runId) ?? new Set()
    runs.set(runId, same)
    same.add(controller)
    try {
      return await fn(controller.signal)
    } finally {
      same.delete(controller)
      if (same.size === 0) runs.delete(runId)
      if (runs.size === 0) this.active.delete(room)
    }
  }

  /** Cancels `runId` in `room` on every instance. Resolves once the signal is sent; runs see it right after. */
  async cancel(target: RunTarget, by?: string): Promise<void> {
    const { room, runId } = this.check(target)
    try {
      await this.control.send({ kind: 'cancel', room, runId, by })
    } catch (err) {
      throw new FST_REALTIME_ADAPTER_FAILED('control', String(err), { cause: err })
    }
  }

  private abort(signal: Extract<Signal, { kind: 'cancel' }>): void {
    const controllers = this.active.get(signal.room)?.get(signal.runId)
    if (controllers === undefined) return
    this.log.info({ room: signal.room, runId: signal.runId, by: signal.by }, 'realtime run cancelled')
    const reason = new FST_REALTIME_RUN_CANCELLED(
      signal.runId,
      signal.room,
      signal.by === undefined ? 'the application' : `user ${signal.by}`
    )
    for (const controller of controllers) controller.abort(reason)
  }

  /** A client's `cancel {room, data: {runId}}`: allowed by `authorize` with `action: 'cancel'`, then sent; the ack says so. */
  async fromClient(conn: Connection, room: string, runId: string, id: string | undefined): Promise<void> {
    if (!(await authorize(this.opts, conn, room, 'cancel', { runId }))) {
      conn.sendError(ErrorCode.Forbidden, `not allowed to cancel runs of "${room}"`, id, room)
      return
    }
    try {
      await this.cancel({ room, runId }, conn.userId)
    } catch (err) {
      conn.log.error({ err, room, runId }, 'realtime cancel failed')
      conn.sendError(ErrorCode.Internal, 'internal error', id, room)
      return
    }
    if (id !== undefined) conn.sendFrame(frames.ack(id, { runId }))
  }
}
