import type { Adapter, HistoryPolicy } from '../adapters/adapter.js'
import type { AgentFeatures } from '../server/agent.js'
import type { Hub } from '../server/hub.js'
import type { Outcome } from '../server/questions.js'
import { openState } from '../server/state-rooms.js'
import { openStream, type StreamHandle } from '../server/streams.js'
import type { AskOptions, EmitResult, RunTarget, StateHandle, StreamOptions } from '../types.js'

/**
 * What the AG-UI endpoints use of the server core, in one place: emitting, token streams, questions, cancellable
 * runs, room names and the adapter's history. The rest of src/ag-ui/ sees only this.
 */
export interface AguiCore {
  readonly adapter: Adapter
  emit(room: string, event: { type: string; data: unknown }): Promise<EmitResult>
  stream(room: string, event: { type: string; data: unknown }, options: StreamOptions): StreamHandle
  /** A state room's handle (throws when the adapter keeps no state rooms). */
  state(room: string): StateHandle
  ask(room: string, event: { type: string; data: unknown }, options: AskOptions): Promise<unknown>
  /** Settles a question as a connection's `reply` would: the first answer wins. */
  settle(room: string, id: string, outcome: Outcome): Promise<'won' | 'settled' | 'unknown'>
  run<T>(target: RunTarget, fn: (signal: AbortSignal) => T | Promise<T>): Promise<T>
  validRoom(room: string): boolean
  hasEvent(type: string): boolean
  policyOf(room: string): HistoryPolicy
}

export function aguiCore(hub: Hub, agent: AgentFeatures): AguiCore {
  return {
    adapter: hub.adapter,
    emit: (room, event) => hub.emit(room, event),
    stream: (room, event, options) => openStream(hub, room, event, options),
    state: (room) => openState(hub, room),
    ask: (room, event, options) => agent.questions.ask(room, event, options),
    settle: (room, id, outcome) => agent.questions.record(room, id, outcome),
    run: (target, fn) => agent.runs.run(target, fn),
    validRoom: (room) => hub.registry.validRoom(room),
    hasEvent: (type) => hub.eventChecker(type) !== undefined,
    policyOf: (room) => hub.policyOf(room)
  }
}
