import type { FastifyBaseLogger } from 'fastify'
import type { Adapter, HistoryPolicy } from '../adapters/adapter.js'

/**
 * The internal room every instance subscribes to, for signals between instances: a run cancelled on one instance
 * while its code runs on another, a question answered on one while it was asked on another. It starts with a NUL
 * character, which no client room can hold (the envelope allows it, the room pattern does not), and the hub never
 * sees it: its publications are taken aside before they reach the hub.
 */
export const CONTROL_ROOM = '\u0000realtime:control'

/** Signals are volatile publications: nothing of them is kept. */
const POLICY: HistoryPolicy = Object.freeze({ size: 0, ttl: 60_000 })

/** A signal between instances. */
export type Signal =
  /** Abort the run `runId` of `room`; `by` is the user who asked, absent when the application did. */
  | { readonly kind: 'cancel'; readonly room: string; readonly runId: string; readonly by?: string }
  /** The question `id` is settled (answered, declined, timed out): its waiters on every instance settle with it. */
  | {
      readonly kind: 'settled'
      readonly id: string
      readonly status: 'answered' | 'declined' | 'timeout'
      readonly data?: unknown
      readonly error?: { readonly code: string; readonly message: string }
    }
  /** The user joined (`joined`) or left `room` from the server: their connections on every instance follow. */
  | { readonly kind: 'member'; readonly user: string; readonly room: string; readonly joined: boolean; readonly from: string }
  /** Close every connection of `user` (the server API's `disconnect`, e.g. after a logout). */
  | { readonly kind: 'disconnect'; readonly user: string; readonly code: number; readonly reason: string }

type Listener = (signal: Signal) => void

/** Sends signals to every instance (this one included) through the adapter, and hands the ones it receives to listeners. */
export class Control {
  private readonly listeners = new Map<Signal['kind'], Listener>()

  constructor(
    private readonly adapter: Adapter,
    private readonly log: FastifyBaseLogger
  ) {}

  /** Makes the adapter deliver signals here; called once the adapter is initialised. */
  start(): Promise<void> {
    return this.adapter.subscribe(CONTROL_ROOM, POLICY)
  }

  on(kind: Signal['kind'], listener: Listener): void {
    this.listeners.set(kind, listener)
  }

  /** Publishes a signal to every instance; rejects when the adapter cannot. */
  async send(signal: Signal): Promise<void> {
    await this.adapter.publish(CONTROL_ROOM, { volatile: true, frame: JSON.stringify(signal) }, POLICY)
  }

  /** A publication of the control room, from the adapter. */
  receive(frame: Buffer): void {
    let signal: Signal
    try {
      signal = JSON.parse(frame.toString('utf8')) as Signal
    } catch (err) {
      this.log.warn({ err }, 'realtime control signal is not JSON; ignored')
      return
    }
    this.listeners.get(signal.kind)?.(signal)
  }
}
