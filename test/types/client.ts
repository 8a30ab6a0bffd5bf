// Type tests of the client: typed by the server's registry (events) and handle() schemas (messages).
// Compiled by test/types.test.ts; every @ts-expect-error must be needed, or the compile fails.
import { type ClientEvent, createClient, type RealtimeClientError } from '../../src/client/index.js'
import { agentEvents, defineEvents, Type } from '../../src/index.js'

const events = defineEvents({ ...agentEvents, 'invoice:paid': Type.Object({ invoiceId: Type.String() }) })
const messages = { 'run:start': Type.Object({ prompt: Type.String(), priority: Type.Optional(Type.Integer()) }) }

// Registries passed as values.
const client = createClient({ url: 'ws://localhost:3000/ws', token: () => 'jwt', events, messages })
client.on('invoice:paid', (event) => {
  const id: string = event.data.invoiceId
  const seq: number | undefined = event.seq
  return [id, seq]
})
// @ts-expect-error no such event in the registry
client.on('invoice:pay', () => {})
client.on('agent:thought', (event) => {
  const growing: boolean = event.partial === true && typeof event.stream === 'string'
  if (growing) return event.data.content
  // @ts-expect-error content is a string
  const n: number = event.data.content
  return n
})
client.subscribe('workflow:1', (event) => {
  if (event.type === 'agent:tool_call') {
    const status: 'pending' | 'running' | 'succeeded' | 'failed' = event.data.status
    return status
  }
  // @ts-expect-error callId exists only on agent:tool_call
  return event.data.callId
})
const ack: { runId: string } = await client.send<'run:start', { runId: string }>('run:start', { prompt: 'go' })
// @ts-expect-error prompt must be a string
await client.send('run:start', { prompt: 1 })
// @ts-expect-error no such message type
await client.send('run:stop', {})
client.onRequest('hitl_request', (question) => {
  const text: string = question.question
  return { answer: text }
})
// @ts-expect-error not a registry event
client.onRequest('confirm', () => true)
client.onQuestions((open) => {
  for (const q of open) if (q.type === 'invoice:paid') return q.data.invoiceId
  // @ts-expect-error no such field on any registry event
  return open[0]?.data.nope
})
const answered: Promise<void> = client.reply(client.questions()[0]?.id as string, { optionId: 'yes' })
await client.decline('q.1', 'dismissed', 'Not now', { timeout: 1000 })
const cancelled: Promise<void> = client.cancel('workflow:1', 'run-1', { timeout: 1000 })
// @ts-expect-error the run id is a string
await client.cancel('workflow:1', 1)
client.onStateChange((state, previous) => {
  // @ts-expect-error not a state
  if (state === 'disconnected') return previous
  return state
})

await client.publish('doc:1', 'invoice:paid', { invoiceId: 'i1' })
client.on('invoice:paid', (event) => event.from?.toUpperCase())
// @ts-expect-error publish takes registry events, not handle() messages
await client.publish('doc:1', 'run:start', { prompt: 'go' })
// @ts-expect-error invoiceId is a string
await client.publish('doc:1', 'invoice:paid', { invoiceId: 1 })

// Registries as type arguments only: no schema code reaches the bundle.
const typed = createClient<typeof events, typeof messages>({ url: 'wss://api.example.com/ws' })
// @ts-expect-error no such event in the registry
typed.on('nope', () => {})
const union: ClientEvent<typeof events>['type'] = 'invoice:paid'
const failure = (e: RealtimeClientError): string => e.code

// Transports: the two the client knows, and which one a connection uses.
const fallback = createClient({ url: 'wss://api.example.com/ws', transports: ['sse', 'websocket'] })
const via: 'websocket' | 'sse' = fallback.transport
// @ts-expect-error no such transport
createClient({ url: 'wss://api.example.com/ws', transports: ['long-polling'] })
// @ts-expect-error transport is read-only
fallback.transport = 'sse'

export { ack, answered, cancelled, failure, union, via }
