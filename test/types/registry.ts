// Type tests with an application registry merged into RealtimeRegistry.
// Compiled by test/types.test.ts; every @ts-expect-error must be needed, or the compile fails.
import Fastify from 'fastify'
import realtime, { agentEvents, defineEvents, type EventOf, type RealtimeConnection, Type } from '../../src/index.js'

const events = defineEvents({
  ...agentEvents,
  'invoice:paid': Type.Object({ invoiceId: Type.String(), amount: Type.Number() })
})

declare module '../../src/types.js' {
  interface RealtimeRegistry {
    events: typeof events
  }
}

const app = Fastify()
await app.register(realtime, { events, jwt: { secret: 'x'.repeat(32) }, authorize: ({ user, room }) => room === `user:${user.sub}` })

// Emits that match the registry compile.
await app.realtime.emit('workflow:1', { type: 'agent:thought', data: { runId: 'r', content: 'thinking' } })
await app.realtime.emit('billing', { type: 'invoice:paid', data: { invoiceId: 'in_1', amount: 12 } })
await app.realtime.emit('r', { type: 'task_update', data: { taskId: 't', status: 'running', progress: 10 } }, { volatile: true })
const result = await app.realtime.emit('r', { type: 'agent:result', data: { runId: 'r', output: null } })
const seq: number = result.seq

// @ts-expect-error an unknown event name
await app.realtime.emit('r', { type: 'agent:thougth', data: { runId: 'r', content: 'x' } })
// @ts-expect-error a field of the wrong type
await app.realtime.emit('r', { type: 'agent:thought', data: { runId: 'r', content: 1 } })
// @ts-expect-error a required field is missing
await app.realtime.emit('r', { type: 'invoice:paid', data: { invoiceId: 'in_1' } })
// @ts-expect-error the data of another event
await app.realtime.emit('r', { type: 'invoice:paid', data: { runId: 'r', content: 'x' } })
// @ts-expect-error a status outside the enum
await app.realtime.emit('r', { type: 'task_update', data: { taskId: 't', status: 'done', progress: 1 } })
// @ts-expect-error emit needs a room
await app.realtime.emit({ type: 'agent:thought', data: { runId: 'r', content: 'x' } })

// Handlers get data typed by their schema; the return value is the ack.
app.realtime.handle('run:start', Type.Object({ prompt: Type.String(), priority: Type.Optional(Type.Integer()) }), async (ctx) => {
  const prompt: string = ctx.data.prompt
  const priority: number | undefined = ctx.data.priority
  const conn: RealtimeConnection = ctx.connection
  const sub: string = ctx.user.sub
  // @ts-expect-error prompt is a string, not a number
  const wrong: number = ctx.data.prompt
  // @ts-expect-error no such field in the schema
  ctx.data.missing
  return { started: true, prompt, priority, conn: conn.id, sub, wrong }
})

// Requests are typed by the registry; the reply type is the caller's.
const answer = await app.realtime.request<{ optionId: string }>('workflow:1', {
  type: 'hitl_request',
  data: { requestId: 'q', question: 'Publish?' }
})
const optionId: string = answer.optionId
// @ts-expect-error a hitl_request needs a question
await app.realtime.request('workflow:1', { type: 'hitl_request', data: { requestId: 'q' } })

// A durable question is typed by the registry; the answer's type is the caller's.
const approved = await app.realtime.ask<{ optionId: string }>(
  { user: 'u1' },
  { type: 'hitl_request', data: { requestId: 'q', question: 'Go?' } },
  { idempotencyKey: 'k' }
)
const chosen: string = approved.optionId
// @ts-expect-error a hitl_request needs a question
await app.realtime.ask('workflow:1', { type: 'hitl_request', data: { requestId: 'q' } })

// A token stream is typed by the registry like emit.
const thought = app.realtime.stream('workflow:1', { type: 'agent:thought', data: { runId: 'r', content: '' } }, { window: 50 })
thought.append('token')
const ended: number = (await thought.end()).seq
// @ts-expect-error an unknown event name
app.realtime.stream('workflow:1', { type: 'agent:thougth', data: { runId: 'r', content: '' } })

// A cancellable run: the signal is an AbortSignal; run() resolves with the function's value.
const steps: number = await app.realtime.run({ room: 'workflow:1', runId: 'r' }, async (signal: AbortSignal) => (signal.aborted ? 0 : 1))
await app.realtime.cancel({ room: 'workflow:1', runId: 'r' })
// @ts-expect-error a run needs its room
await app.realtime.run({ runId: 'r' }, () => 1)

// The union of events narrows on type.
function describe(event: EventOf<typeof events>): string {
  if (event.type === 'invoice:paid') return event.data.invoiceId
  if (event.type === 'agent:thought') return event.data.content
  // @ts-expect-error content exists only on agent:thought
  return event.data.content
}

// Options are typed.
// @ts-expect-error path must be a string
await app.register(realtime, { path: 42 })
// @ts-expect-error authorize returns a boolean
await app.register(realtime, { authorize: () => 'yes' })
await app.register(realtime, { authorize: ({ action, runId }) => action === 'subscribe' || runId !== undefined })
// @ts-expect-error no such action
await app.register(realtime, { authorize: ({ action }) => action === 'launch' })

export { chosen, describe, ended, optionId, seq, steps }
