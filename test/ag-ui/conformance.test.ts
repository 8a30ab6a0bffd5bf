import { EventType } from '@ag-ui/core'
import { EventSchema, RunAgentInputSchema } from '@ag-ui/core/schemas'
import { Value } from '@sinclair/typebox/value'
import t from 'tap'
import { aguiEvents, RunAgentInput } from '../../src/ag-ui/index.js'
import { type AguiEvent, check } from '../../src/ag-ui/run.js'
import { aguiApp } from './helpers.js'

const patch = [
  { op: 'add', path: '/a', value: 1 },
  { op: 'remove', path: '/a' },
  { op: 'replace', path: '', value: {} },
  { op: 'move', from: '/a', path: '/b' },
  { op: 'copy', from: '/a', path: '/b' },
  { op: 'test', path: '/a~1b', value: null }
]
const interrupt = { id: 'i1', reason: 'approval', message: 'ok?', responseSchema: { type: 'object' }, expiresAt: '2030-01-01T00:00:00Z' }
const messages = [
  { id: 'd', role: 'developer', content: 'be brief' },
  { id: 's', role: 'system', content: 'sys' },
  { id: 'a', role: 'assistant', content: 'hi', toolCalls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
  {
    id: 'u',
    role: 'user',
    content: [
      { type: 'text', text: 'look' },
      { type: 'image', source: { type: 'url', value: 'https://x/y.png' } }
    ]
  },
  { id: 't', role: 'tool', content: 'result', toolCallId: 'c' },
  { id: 'v', role: 'activity', activityType: 'plan', content: { steps: [] } },
  { id: 'r', role: 'reasoning', content: 'because' }
]
const input = {
  threadId: 't',
  runId: 'r',
  messages,
  tools: [{ name: 'f', description: 'd' }],
  context: [],
  resume: [{ interruptId: 'i1', status: 'resolved', payload: { ok: true } }]
}

/** One valid event of every type, with most optional fields set. */
const valid: Record<string, object> = {
  TEXT_MESSAGE_START: { messageId: 'm', role: 'assistant', timestamp: 1, metadata: { k: null } },
  TEXT_MESSAGE_CONTENT: { messageId: 'm', delta: 'x', subagentRunId: 's' },
  TEXT_MESSAGE_END: { messageId: 'm' },
  TEXT_MESSAGE_CHUNK: { delta: 'x' },
  TOOL_CALL_START: { toolCallId: 'c', toolCallName: 'f', parentMessageId: 'm' },
  TOOL_CALL_ARGS: { toolCallId: 'c', delta: '{' },
  TOOL_CALL_END: { toolCallId: 'c' },
  TOOL_CALL_CHUNK: { toolCallId: 'c', delta: '}' },
  TOOL_CALL_RESULT: { messageId: 'm2', toolCallId: 'c', content: 'done', role: 'tool' },
  STATE_SNAPSHOT: { snapshot: { plan: [1] } },
  STATE_DELTA: { delta: patch },
  MESSAGES_SNAPSHOT: { messages },
  ACTIVITY_SNAPSHOT: { messageId: 'v', activityType: 'plan', content: { a: 1 }, replace: false },
  ACTIVITY_DELTA: { messageId: 'v', activityType: 'plan', patch },
  RAW: { event: { any: 'thing' }, source: 'llm' },
  CUSTOM: { name: 'interrupt', value: interrupt },
  RUN_STARTED: { threadId: 't', runId: 'r', input },
  RUN_FINISHED: {
    threadId: 't',
    runId: 'r',
    outcome: { type: 'interrupt', interrupts: [interrupt] },
    usage: [{ model: 'm', inputTokens: 3 }]
  },
  RUN_ERROR: { message: 'boom', code: 'cancelled' },
  STEP_STARTED: { stepName: 's' },
  STEP_FINISHED: { stepName: 's' },
  REASONING_START: { messageId: 'r' },
  REASONING_MESSAGE_START: { messageId: 'r', role: 'reasoning' },
  REASONING_MESSAGE_CONTENT: { messageId: 'r', delta: 'hm' },
  REASONING_MESSAGE_END: { messageId: 'r' },
  REASONING_MESSAGE_CHUNK: {},
  REASONING_END: { messageId: 'r' },
  REASONING_ENCRYPTED_VALUE: { subtype: 'message', entityId: 'r', encryptedValue: 'zz' },
  SUBAGENT_STARTED: { subagentRunId: 'sa', name: 'helper' },
  SUBAGENT_FINISHED: { subagentRunId: 'sa', outcome: { type: 'suspended', interruptIds: ['i1'] } },
  SUBAGENT_ERROR: { subagentRunId: 'sa', message: 'failed' }
}

/** Events both must refuse. */
const invalid: object[] = [
  { type: 'TEXT_MESSAGE_CONTENT', messageId: 'm' },
  { type: 'TEXT_MESSAGE_START', messageId: 'm', role: 'tool' },
  { type: 'STATE_DELTA', delta: [{ op: 'add', path: 'no-slash', value: 1 }] },
  { type: 'RUN_FINISHED', threadId: 't', runId: 'r', outcome: { type: 'interrupt', interrupts: [] } },
  { type: 'TOOL_CALL_START', toolCallId: 'c' },
  { type: 'REASONING_MESSAGE_START', messageId: 'r', role: 'assistant' },
  { type: 'SUBAGENT_STARTED', name: 'helper' },
  { type: 'MESSAGES_SNAPSHOT', messages: [{ id: 'x', role: 'robot', content: '' }] },
  { type: 'NOT_AN_EVENT' },
  { type: 5 }
]

t.test('the preset has exactly the event types of @ag-ui/core', async (t) => {
  t.same(Object.keys(aguiEvents).sort(), Object.values(EventType).sort())
})

t.test('every event valid for our schemas parses with @ag-ui/core, field for field', async (t) => {
  for (const [type, fields] of Object.entries(valid)) {
    const event = { type, ...fields }
    t.doesNotThrow(() => check(event as AguiEvent), `${type} passes ours`)
    const parsed = EventSchema.safeParse(event)
    t.ok(parsed.success, `${type} passes theirs ${parsed.error?.message ?? ''}`)
  }
  t.ok(Value.Check(RunAgentInput, input))
  t.ok(RunAgentInputSchema.safeParse(input).success)
})

t.test('an event @ag-ui/core refuses is refused by ours too, with the field named', async (t) => {
  for (const event of invalid) {
    t.notOk(EventSchema.safeParse(event).success, `theirs refuses ${JSON.stringify(event)}`)
    t.throws(() => check(event as AguiEvent), { code: 'FST_REALTIME_INVALID_EVENT' }, `ours refuses ${JSON.stringify(event)}`)
  }
  t.throws(() => check({ type: 'TOOL_CALL_ARGS', toolCallId: 'c' } as never), /TOOL_CALL_ARGS is invalid at \/delta/)
  t.throws(() => check(null as never), /must be an object/)
})

t.test('the AsyncAPI document lists the AG-UI events when the preset is used', async (t) => {
  const app = await aguiApp(t, async () => undefined)
  const messages = app.realtime.asyncapi().components.messages as Record<string, { name: string }>
  for (const type of ['RUN_STARTED', 'TEXT_MESSAGE_CONTENT', 'STATE_DELTA', 'RUN_FINISHED']) {
    t.ok(
      Object.values(messages).some((m) => m.name === type),
      `${type} is listed`
    )
  }
})
