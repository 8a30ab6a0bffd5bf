import { type TProperties, Type } from '@sinclair/typebox'
import { defineEvents } from '../events.js'

/**
 * The AG-UI 1.x event set as TypeBox schemas, mirroring `@ag-ui/core`'s (a conformance test parses what we emit with
 * theirs). Each registry entry is the event without its `type`, which is the entry's name: in a room, the AG-UI event
 * `{ type: 'TEXT_MESSAGE_START', messageId }` travels as `{ type: 'TEXT_MESSAGE_START', data: { messageId } }`. Objects
 * accept fields they do not name, as AG-UI's do.
 */

const Str = Type.String()
const Opt = Type.Optional
const Json = Type.Unknown()
const Metadata = Type.Record(Type.String(), Type.Unknown())
/** A JSON Pointer (RFC 6901). */
const Pointer = Type.String({ pattern: '^(/([^/~]|~[01])*)*$' })

/** The fields every event may carry. */
const base = {
  timestamp: Opt(Type.Integer()),
  rawEvent: Opt(Json),
  metadata: Opt(Metadata)
}
/** And those of the events that may belong to a subagent's work. */
const attributable = { ...base, subagentRunId: Opt(Str) }

const event = <P extends TProperties>(props: P) => Type.Object({ ...attributable, ...props })

const Role = Type.Union(['developer', 'system', 'assistant', 'user'].map((r) => Type.Literal(r)))

const JsonPatch = Type.Array(
  Type.Union([
    Type.Object({ op: Type.Literal('add'), path: Pointer, value: Json }),
    Type.Object({ op: Type.Literal('remove'), path: Pointer }),
    Type.Object({ op: Type.Literal('replace'), path: Pointer, value: Json }),
    Type.Object({ op: Type.Literal('move'), from: Pointer, path: Pointer }),
    Type.Object({ op: Type.Literal('copy'), from: Pointer, path: Pointer }),
    Type.Object({ op: Type.Literal('test'), path: Pointer, value: Json })
  ])
)

const Source = Type.Union([
  Type.Object({ type: Type.Literal('data'), value: Str, mimeType: Str }),
  Type.Object({ type: Type.Literal('url'), value: Str, mimeType: Opt(Str) }),
  Type.Object({ type: Type.Literal('file'), value: Str, provider: Opt(Str), mimeType: Opt(Str) })
])
const ContentPart = Type.Union([
  Type.Object({ type: Type.Literal('text'), id: Opt(Str), text: Str, metadata: Opt(Json) }),
  ...(['image', 'audio', 'video', 'document'] as const).map((kind) =>
    Type.Object({ type: Type.Literal(kind), id: Opt(Str), source: Source, metadata: Opt(Json) })
  )
])
const Content = Type.Union([Str, Type.Array(ContentPart)])

const messageBase = { subagentRunId: Opt(Str), id: Str, encryptedValue: Opt(Str), metadata: Opt(Metadata) }
const ToolCall = Type.Object({
  id: Str,
  type: Type.Literal('function'),
  function: Type.Object({ name: Str, arguments: Str }),
  encryptedValue: Opt(Str),
  metadata: Opt(Metadata)
})
/** A message of a conversation, by role. */
export const AguiMessage = Type.Union([
  Type.Object({ ...messageBase, role: Type.Literal('developer'), name: Opt(Str), content: Str }),
  Type.Object({ ...messageBase, role: Type.Literal('system'), name: Opt(Str), content: Str }),
  Type.Object({ ...messageBase, role: Type.Literal('assistant'), name: Opt(Str), content: Opt(Str), toolCalls: Opt(Type.Array(ToolCall)) }),
  Type.Object({ ...messageBase, role: Type.Literal('user'), name: Opt(Str), content: Content }),
  Type.Object({ ...messageBase, role: Type.Literal('tool'), content: Content, toolCallId: Str, error: Opt(Str) }),
  Type.Object({ ...messageBase, role: Type.Literal('activity'), activityType: Str, content: Type.Record(Type.String(), Type.Unknown()) }),
  Type.Object({ ...messageBase, role: Type.Literal('reasoning'), content: Str })
])

/** Something a run needs from outside before it can go on (an approval, a missing value). */
export const AguiInterrupt = Type.Object({
  subagentRunId: Opt(Str),
  id: Str,
  reason: Str,
  message: Opt(Str),
  toolCallId: Opt(Str),
  responseSchema: Opt(Type.Record(Type.String(), Type.Unknown())),
  expiresAt: Opt(Str),
  metadata: Opt(Metadata)
})

/** An answer to one interrupt, carried by the run that goes on from it. */
export const AguiResumeEntry = Type.Object({
  interruptId: Str,
  status: Type.Union([Type.Literal('resolved'), Type.Literal('cancelled')]),
  payload: Opt(Json),
  metadata: Opt(Metadata)
})

/** The body of a run request (`POST` on an AG-UI route), as `HttpAgent` sends it. */
export const RunAgentInput = Type.Object({
  threadId: Str,
  runId: Str,
  protocolVersion: Opt(Str),
  parentRunId: Opt(Str),
  state: Opt(Json),
  messages: Type.Array(AguiMessage),
  tools: Opt(Type.Array(Type.Object({ name: Str, description: Str, parameters: Opt(Json), metadata: Opt(Metadata) }))),
  context: Opt(Type.Array(Type.Object({ description: Str, value: Str }))),
  forwardedProps: Opt(Json),
  resume: Opt(Type.Array(AguiResumeEntry))
})

const Usage = Type.Array(
  Type.Object({
    provider: Opt(Str),
    model: Opt(Str),
    ...Object.fromEntries(
      ['inputTokens', 'outputTokens', 'totalTokens', 'reasoningTokens', 'cachedInputTokens', 'cacheWriteInputTokens'].map((k) => [
        k,
        Opt(Type.Integer({ minimum: 0 }))
      ])
    )
  })
)

const Outcome = Type.Union([
  Type.Object({ type: Type.Literal('success'), pendingToolCallIds: Opt(Type.Array(Str)) }),
  Type.Object({ type: Type.Literal('interrupt'), interrupts: Type.Array(AguiInterrupt, { minItems: 1 }) }),
  Type.Object({ type: Type.Literal('cancelled') })
])

/**
 * The AG-UI preset: every AG-UI 1.x event. Spread it into your registry (`defineEvents({ ...aguiEvents, ... })`) to
 * emit AG-UI events in rooms and to use `app.realtime.agui.route()`.
 */
export const aguiEvents = defineEvents({
  TEXT_MESSAGE_START: event({ messageId: Str, role: Opt(Role), name: Opt(Str) }),
  TEXT_MESSAGE_CONTENT: event({ messageId: Str, delta: Str }),
  TEXT_MESSAGE_END: event({ messageId: Str }),
  TEXT_MESSAGE_CHUNK: event({ messageId: Opt(Str), role: Opt(Role), delta: Opt(Str), name: Opt(Str) }),
  TOOL_CALL_START: event({ toolCallId: Str, toolCallName: Str, parentMessageId: Opt(Str) }),
  TOOL_CALL_ARGS: event({ toolCallId: Str, delta: Str }),
  TOOL_CALL_END: event({ toolCallId: Str }),
  TOOL_CALL_CHUNK: event({ toolCallId: Opt(Str), toolCallName: Opt(Str), parentMessageId: Opt(Str), delta: Opt(Str) }),
  TOOL_CALL_RESULT: event({ messageId: Str, toolCallId: Str, content: Content, role: Opt(Type.Literal('tool')) }),
  STATE_SNAPSHOT: event({ snapshot: Json }),
  STATE_DELTA: event({ delta: JsonPatch }),
  MESSAGES_SNAPSHOT: Type.Object({ ...base, messages: Type.Array(AguiMessage) }),
  ACTIVITY_SNAPSHOT: event({
    messageId: Str,
    activityType: Str,
    content: Type.Record(Type.String(), Type.Unknown()),
    replace: Opt(Type.Boolean())
  }),
  ACTIVITY_DELTA: event({ messageId: Str, activityType: Str, patch: JsonPatch }),
  RAW: event({ event: Json, source: Opt(Str) }),
  CUSTOM: event({ name: Str, value: Json }),
  RUN_STARTED: Type.Object({
    ...base,
    threadId: Str,
    runId: Str,
    protocolVersion: Opt(Str),
    parentRunId: Opt(Str),
    input: Opt(RunAgentInput)
  }),
  RUN_FINISHED: Type.Object({ ...base, threadId: Str, runId: Str, result: Opt(Json), outcome: Opt(Outcome), usage: Opt(Usage) }),
  RUN_ERROR: Type.Object({ ...base, message: Str, code: Opt(Str), usage: Opt(Usage) }),
  STEP_STARTED: event({ stepName: Str }),
  STEP_FINISHED: event({ stepName: Str }),
  REASONING_START: event({ messageId: Str }),
  REASONING_MESSAGE_START: event({ messageId: Str, role: Type.Literal('reasoning') }),
  REASONING_MESSAGE_CONTENT: event({ messageId: Str, delta: Str }),
  REASONING_MESSAGE_END: event({ messageId: Str }),
  REASONING_MESSAGE_CHUNK: event({ messageId: Opt(Str), delta: Opt(Str) }),
  REASONING_END: event({ messageId: Str }),
  REASONING_ENCRYPTED_VALUE: event({
    subtype: Type.Union([Type.Literal('tool-call'), Type.Literal('message')]),
    entityId: Str,
    encryptedValue: Str
  }),
  SUBAGENT_STARTED: Type.Object({
    ...base,
    subagentRunId: Str,
    name: Str,
    description: Opt(Str),
    parentSubagentRunId: Opt(Str),
    parentToolCallId: Opt(Str),
    parentMessageId: Opt(Str)
  }),
  SUBAGENT_FINISHED: Type.Object({
    ...base,
    subagentRunId: Str,
    result: Opt(Json),
    outcome: Opt(
      Type.Union([
        Type.Object({ type: Type.Literal('success') }),
        Type.Object({ type: Type.Literal('suspended'), interruptIds: Opt(Type.Array(Str)) })
      ])
    )
  }),
  SUBAGENT_ERROR: Type.Object({ ...base, subagentRunId: Str, message: Str, code: Opt(Str) })
})

export type AguiEvents = typeof aguiEvents
