import { Kind, type Static, type TSchema, Type } from '@sinclair/typebox'
import { FST_REALTIME_INVALID_REGISTRY } from './errors.js'
import { RESERVED_TYPES } from './protocol/constants.js'

/** A registry of server→client event types: a name and the TypeBox schema of its `data`. */
export type EventRegistry = Record<string, TSchema>

/** The discriminated union `{ type, data }` of every event in a registry. */
export type EventOf<E extends EventRegistry> = {
  [K in keyof E & string]: { type: K; data: Static<E[K]> }
}[keyof E & string]

/** The `data` type of one event of a registry. */
export type EventData<E extends EventRegistry, K extends keyof E> = Static<E[K]>

/**
 * A client→server message type: the schema of its `data` and, optionally, of the ack its handler returns. Both the
 * server's `handle()` and the client's `send()` read their types from it.
 */
export interface MessageSpec<D extends TSchema = TSchema, A extends TSchema = TSchema> {
  readonly data: D
  readonly ack?: A
}

/** A registry of client→server message types: a name and a `MessageSpec`, or only the schema of its `data`. */
export type MessageRegistry = Record<string, TSchema | MessageSpec>

/** The ack type a message spec declares; `unknown` without an `ack` schema. */
export type AckOf<S> = S extends { ack: infer A extends TSchema } ? Static<A> : unknown

export function isSchema(value: unknown): value is TSchema {
  return typeof value === 'object' && value !== null && Kind in value
}

/**
 * Declares an event registry. At run time it checks every name and schema and returns the same
 * object; at compile time the `const` parameter keeps each name literal, so `emit` and the client
 * can tell a wrong name or payload.
 */
export function defineEvents<const E extends EventRegistry>(events: E): E {
  const problem = registryProblem(events)
  if (problem !== undefined) throw new FST_REALTIME_INVALID_REGISTRY(problem)
  return events
}

/**
 * Declares the client→server messages: `{ 'run:start': { data: Type.Object(…), ack: Type.Object(…) } }`. Pass an
 * entry to `app.realtime.handle(type, messages[type], handler)` (the handler must return the ack's type) and the
 * registry to the client's `messages` option (`send()` checks the data and resolves with the ack's type). At run time
 * it checks every name and schema and returns the same object.
 */
export function defineMessages<const M extends Record<string, MessageSpec>>(messages: M): M {
  for (const [name, spec] of Object.entries(messages as object)) {
    const problem =
      registryProblem({ [name]: (spec as MessageSpec | undefined)?.data }) ??
      (spec.ack === undefined || isSchema(spec.ack) ? undefined : `message "${name}": ack must be a TypeBox schema`)
    if (problem !== undefined) throw new FST_REALTIME_INVALID_REGISTRY(problem.replace(/^event/, 'message'))
  }
  return messages
}

/** The `data` schema of a `handle()` registration: a `defineMessages` entry's `data`, else what was given (checked later). */
export function dataSchemaOf(schema: unknown): unknown {
  return !isSchema(schema) && isSchema((schema as Partial<MessageSpec> | null)?.data) ? (schema as MessageSpec).data : schema
}

/** What is wrong with a registry, or undefined. Checked by `defineEvents` and by the `events` option alike. */
export function registryProblem(events: unknown): string | undefined {
  if (typeof events !== 'object' || events === null || Array.isArray(events)) {
    return 'an event registry must be an object of name → TypeBox schema'
  }
  for (const [name, schema] of Object.entries(events)) {
    if (name.length === 0 || name.length > 128) return `event name "${name}" must be 1 to 128 characters`
    if (RESERVED_TYPES.includes(name)) return `"${name}" is a reserved control type of realtime.v1`
    if (!isSchema(schema)) return `event "${name}" must map to a TypeBox schema`
  }
  return undefined
}

const Id = Type.String({ minLength: 1, maxLength: 256 })
const Progress = Type.Integer({ minimum: 0, maximum: 100 })
const RunStatus = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('waiting'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled')
])

/**
 * The shipped preset for AI-agent workflows. Spread it into your own registry:
 * `defineEvents({ ...agentEvents, 'invoice:paid': Type.Object({ … }) })`.
 */
export const agentEvents = defineEvents({
  /** A step of the agent's reasoning, streamed as it happens. */
  'agent:thought': Type.Object({
    runId: Id,
    content: Type.String(),
    step: Type.Optional(Type.Integer({ minimum: 0 }))
  }),
  /** A tool invocation and its life cycle; one `callId` goes through pending → running → succeeded | failed. */
  'agent:tool_call': Type.Object({
    runId: Id,
    callId: Id,
    tool: Type.String({ minLength: 1 }),
    status: Type.Union([Type.Literal('pending'), Type.Literal('running'), Type.Literal('succeeded'), Type.Literal('failed')]),
    args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    output: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.String()),
    durationMs: Type.Optional(Type.Number({ minimum: 0 }))
  }),
  /** The final answer of a run. */
  'agent:result': Type.Object({
    runId: Id,
    output: Type.Unknown(),
    summary: Type.Optional(Type.String())
  }),
  /** A run failed; `retryable` tells the page whether to offer a retry. */
  'agent:error': Type.Object({
    runId: Id,
    code: Type.String({ minLength: 1 }),
    message: Type.String(),
    retryable: Type.Boolean()
  }),
  /** Status and progress of a task (a run, or a unit of work inside it). */
  task_update: Type.Object({
    taskId: Id,
    runId: Type.Optional(Id),
    status: RunStatus,
    progress: Progress,
    message: Type.Optional(Type.String())
  }),
  /** Status of one node of a workflow graph. */
  node_status: Type.Object({
    runId: Id,
    nodeId: Id,
    name: Type.Optional(Type.String()),
    status: Type.Union([
      Type.Literal('pending'),
      Type.Literal('running'),
      Type.Literal('completed'),
      Type.Literal('failed'),
      Type.Literal('skipped')
    ]),
    progress: Type.Optional(Progress)
  }),
  /** A question for a person. Sent with `request()`, the client's `reply` is the answer. */
  hitl_request: Type.Object({
    requestId: Id,
    runId: Type.Optional(Id),
    question: Type.String({ minLength: 1 }),
    options: Type.Optional(
      Type.Array(Type.Object({ id: Id, label: Type.String(), style: Type.Optional(Type.String()) }), {
        maxItems: 32
      })
    ),
    allowFreeText: Type.Optional(Type.Boolean()),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 0 }))
  }),
  /** A notice for the user, e.g. a degraded dependency or a quota warning. */
  error_notification: Type.Object({
    severity: Type.Union([Type.Literal('info'), Type.Literal('warning'), Type.Literal('error'), Type.Literal('critical')]),
    message: Type.String(),
    code: Type.Optional(Type.String()),
    source: Type.Optional(Type.String()),
    runId: Type.Optional(Id)
  })
})

export type AgentEvents = typeof agentEvents
