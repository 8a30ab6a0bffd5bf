import { randomBytes } from 'node:crypto'
import {
  FST_REALTIME_CLOSING,
  FST_REALTIME_INVALID_OPTION,
  FST_REALTIME_REQUEST_REJECTED,
  FST_REALTIME_REQUEST_TIMEOUT
} from '../errors.js'
import { ErrorCode } from '../protocol/constants.js'
import { DEADLINE_RULE, type Deadline, deadline, isDeadline, MAX_TIMER } from '../protocol/deadline.js'
import type { AskOptions, JoinTarget } from '../types.js'
import type { Connection } from './connection.js'
import type { Signal } from './control.js'
import * as frames from './frames.js'
import type { Hub } from './hub.js'
import { StateField } from './state.js'

type Settled = Extract<Signal, { kind: 'settled' }>
export type Outcome = Omit<Settled, 'kind' | 'id'> & { by?: string }

interface Waiter {
  readonly answer: Deadline<unknown>
  readonly timeout: number
}

/**
 * Durable human-in-the-loop questions (`ask()`). A question is kept in its room's shared state and sent as an event of
 * the room's history, so every connection holding the room sees it, after a reconnect too, on any instance. The first
 * `reply` takes it from the state (one atomic step, whichever instance it reaches): that one wins, later ones get
 * `already_answered`, and the room is told with `hitl_resolved`. A `settled` signal reaches the askers on every instance.
 */
export class Questions {
  /** The `ask()` calls of this instance waiting for each question. */
  private readonly waiting = new Map<string, Set<Waiter>>()

  constructor(private readonly hub: Hub) {
    hub.control.on('settled', (signal) => this.release(signal as Settled))
  }

  /**
   * `app.realtime.ask()`. A bad question throws here, synchronously, like `emit()`. `posed` learns the question's id
   * once it is in the room (the server API answers with it, then waits).
   */
  ask(target: JoinTarget, event: unknown, options: AskOptions = {}, posed?: (id: string) => void): Promise<unknown> {
    const room = typeof target === 'string' ? target : `user:${target.user}`
    this.hub.checkRoom(room)
    const { type, data } = this.hub.validateEvent(event)
    const timeout = options.timeout ?? this.hub.opts.requestTimeout
    if (!isDeadline(timeout)) throw new FST_REALTIME_INVALID_OPTION(`ask timeout must be ${DEADLINE_RULE} (got ${timeout})`)
    const key = options.idempotencyKey
    if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 256)) {
      throw new FST_REALTIME_INVALID_OPTION('ask idempotencyKey must be a string of 1 to 256 characters')
    }
    return this.pose(room, type, data, timeout, key, posed)
  }

  private async pose(
    room: string,
    type: string,
    data: unknown,
    timeout: number,
    key: string | undefined,
    posed?: (id: string) => void
  ): Promise<unknown> {
    // Kept as long as it may be answered, and the history ttl after.
    const ttl = Math.min(MAX_TIMER, timeout + this.hub.policyOf(room).ttl)
    const id = `q.${randomBytes(9).toString('base64url')}`
    if (key !== undefined) {
      const held = await this.hub.adapter.stateClaim(room, StateField.key(key), id, ttl)
      if (held !== id) {
        const state = await this.hub.adapter.stateRead(room)
        const settled = state[StateField.settled(held)]
        // Answered (or declined) before: the same answer again, at once. Pending: wait for it with the others.
        if (settled !== undefined && (JSON.parse(settled) as Outcome).status !== 'timeout') {
          posed?.(held)
          return this.outcome(held, JSON.parse(settled) as Outcome, timeout)
        }
        if (state[StateField.question(held)] !== undefined) {
          posed?.(held)
          return this.wait(room, held, timeout)
        }
        // Timed out, or forgotten: ask anew under the same key.
        await this.hub.adapter.stateWrite(room, { [StateField.key(key)]: id }, ttl)
      }
    }
    const waiting = this.wait(room, id, timeout)
    const ts = frames.now()
    try {
      await this.hub.adapter.stateWrite(room, { [StateField.question(id)]: JSON.stringify({ id, type, data, ts }) }, ttl)
      await this.hub.emit(room, { type, data }, { immediate: true }, `,"id":${JSON.stringify(id)}`)
    } catch (err) {
      // Not asked (the adapter failed): the caller gets this error, and nothing waits for an answer that cannot come.
      this.forget(id, err as Error)
      return waiting
    }
    posed?.(id)
    return waiting
  }

  /** Waits for the question's outcome, settling it as timed out when `timeout` passes first. */
  private wait(room: string, id: string, timeout: number): Promise<unknown> {
    const waiter: Waiter = { answer: deadline(timeout, () => this.expire(room, id)), timeout }
    const same = this.waiting.get(id) ?? new Set()
    this.waiting.set(id, same.add(waiter))
    return waiter.answer.promise
  }

  /** Drops the waiters of a question that was never asked; they reject with `err` (their timers cleared). */
  private forget(id: string, err: Error): void {
    for (const w of this.waiting.get(id) as Set<Waiter>) w.answer.reject(err)
    this.waiting.delete(id)
  }

  private expire(room: string, id: string): void {
    this.record(room, id, { status: 'timeout' }).catch((err: unknown) => {
      // Not recorded (the adapter failed): the askers here give up all the same; the question may still be answered.
      this.hub.log.warn({ err, room, id }, 'realtime question timeout could not be recorded')
      this.release({ kind: 'settled', id, status: 'timeout' })
    })
  }

  /**
   * Records the outcome if the question is still pending, in one atomic step: the askers are settled, the room told
   * (`hitl_resolved`) and the other instances signalled. When someone settled it first, the askers here are settled
   * from what was recorded (in case its signal was lost). Resolves with what happened. Public because it is also the
   * way an answer that does not come from a connection (an AG-UI run resuming an interrupt) settles a question.
   */
  async record(room: string, id: string, outcome: Outcome): Promise<'won' | 'settled' | 'unknown'> {
    const ttl = this.hub.policyOf(room).ttl
    const won = await this.hub.adapter.stateTake(room, StateField.question(id), { [StateField.settled(id)]: JSON.stringify(outcome) }, ttl)
    if (!won) {
      const recorded = (await this.hub.adapter.stateRead(room))[StateField.settled(id)]
      if (recorded === undefined) return 'unknown'
      this.release({ kind: 'settled', id, ...(JSON.parse(recorded) as Outcome) })
      return 'settled'
    }
    const { status, data, error, by } = outcome
    this.release({ kind: 'settled', id, status, data, error })
    await Promise.all([
      this.hub.publish(room, frames.hitlResolved(room, { id, status, by, answer: data, error })),
      this.hub.control.send({ kind: 'settled', id, status, data, error })
    ]).catch((err: unknown) => this.hub.log.warn({ err, room, id }, 'realtime question outcome recorded but not announced'))
    return 'won'
  }

  /** A question's outcome, from this instance or a signal of another: every `ask()` here waiting for it settles. */
  private release(signal: Settled): void {
    const waiters = this.waiting.get(signal.id)
    if (waiters === undefined) return
    this.waiting.delete(signal.id)
    for (const w of waiters) this.outcome(signal.id, signal, w.timeout).then(w.answer.resolve, w.answer.reject)
  }

  private async outcome(id: string, outcome: Outcome, timeout: number): Promise<unknown> {
    if (outcome.status === 'answered') return outcome.data
    if (outcome.status === 'timeout') throw new FST_REALTIME_REQUEST_TIMEOUT(id, timeout)
    const { code, message } = outcome.error as { code: string; message: string }
    // `reply` keeps the client's own code and message, which the error's message only quotes.
    throw Object.assign(new FST_REALTIME_REQUEST_REJECTED(id, `${code}: ${message}`), { reply: { code, message } })
  }

  /**
   * A `reply {id, room}` to a question: only a connection holding the room may answer. The first one wins and gets an
   * `ack`; a later one `already_answered`.
   */
  async answer(
    conn: Connection,
    room: string,
    id: string,
    data: unknown,
    error: { code: string; message: string } | undefined
  ): Promise<void> {
    if (!conn.rooms.has(room)) {
      conn.sendError(ErrorCode.Forbidden, `subscribe to "${room}" to answer its questions`, id, room)
      return
    }
    const by = conn.userId
    const outcome: Outcome = error === undefined ? { status: 'answered', data: data ?? null, by } : { status: 'declined', error, by }
    let result: 'won' | 'settled' | 'unknown'
    try {
      result = await this.record(room, id, outcome)
    } catch (err) {
      conn.log.error({ err, room, id }, 'realtime question answer failed')
      conn.sendError(ErrorCode.Internal, 'internal error', id, room)
      return
    }
    if (result === 'won') conn.sendFrame(frames.ack(id, null))
    else if (result === 'settled') conn.sendError(ErrorCode.AlreadyAnswered, `question "${id}" was already answered`, id, room)
    else conn.sendError(ErrorCode.UnknownRequest, `no question "${id}" in "${room}"`, id, room)
  }

  /** The app is closing: the `ask()` calls waiting here reject (the questions stay, for another instance or a retry). */
  close(): void {
    for (const [id, waiters] of this.waiting) {
      for (const w of waiters) w.answer.reject(new FST_REALTIME_CLOSING())
      this.waiting.delete(id)
    }
  }
}
