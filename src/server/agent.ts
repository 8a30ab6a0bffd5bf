import type { Hub } from './hub.js'
import { Questions } from './questions.js'
import { Runs } from './runs.js'

/** The agent features of one app: durable questions (`ask`) and cancellable runs. Token streams need no state here. */
export interface AgentFeatures {
  readonly questions: Questions
  readonly runs: Runs
}

/** Builds the agent features on `hub` and plugs their client messages and shutdown into it. */
export function plugAgentFeatures(hub: Hub): AgentFeatures {
  const runs = new Runs(hub.opts, hub.control, hub.log, (room): room is string => hub.registry.validRoom(room))
  const questions = new Questions(hub)
  hub.features = {
    answer: (conn, room, id, data, error) => questions.answer(conn, room, id, data, error),
    cancel: (conn, room, runId, id) => runs.fromClient(conn, room, runId, id),
    close: () => questions.close()
  }
  return { questions, runs }
}
