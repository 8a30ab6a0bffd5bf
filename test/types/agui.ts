// Type tests of fastify-realtime/ag-ui: the preset, app.realtime.agui.route() and the run object.
// Compiled by test/ag-ui/types.test.ts; every @ts-expect-error must be needed, or the compile fails.
import Fastify from 'fastify'
import { RealtimeAgent } from '../../src/ag-ui/client.js'
import { type AguiEvent, type AguiRun, aguiEvents, aguiLogRoom, aguiRoom } from '../../src/ag-ui/index.js'
import { createClient } from '../../src/client/index.js'
import realtime, { defineEvents, Type } from '../../src/index.js'

const events = defineEvents({ ...aguiEvents, 'invoice:paid': Type.Object({ invoiceId: Type.String() }) })

declare module '../../src/types.js' {
  interface RealtimeRegistry {
    events: typeof events
  }
}

const app = Fastify()
await app.register(realtime, { events, jwt: { secret: 'x'.repeat(32) } })

// AG-UI events in a room are registry events: the type is the name, the rest is data.
await app.realtime.emit(aguiRoom('t'), { type: 'STEP_STARTED', data: { stepName: 'plan' } })
// @ts-expect-error STEP_STARTED needs a stepName
await app.realtime.emit(aguiRoom('t'), { type: 'STEP_STARTED', data: {} })

app.realtime.agui.route(
  '/agent',
  async (input, run: AguiRun, signal: AbortSignal) => {
    const threadId: string = input.threadId
    const resumed: string | undefined = input.resume?.[0]?.interruptId
    await run.emit({ type: 'STATE_DELTA', delta: [{ op: 'replace', path: '/plan', value: [] }] })
    // @ts-expect-error TEXT_MESSAGE_CONTENT needs a delta
    await run.emit({ type: 'TEXT_MESSAGE_CONTENT', messageId: 'm' })
    // @ts-expect-error not an AG-UI event
    await run.emit({ type: 'invoice:paid', invoiceId: 'in_1' })
    const text = run.text({ role: 'assistant' })
    text.append('hi')
    await text.end()
    const call = run.toolCall('search')
    await call.args({ q: 'x' })
    await call.result({ hits: 3 })
    await run.state.set({ plan: ['search'] })
    await run.state.patch([{ op: 'add', path: '/plan/-', value: 'answer' }])
    // @ts-expect-error a patch is RFC 6902 operations
    await run.state.patch([{ op: 'append', path: '/plan' }])
    const state: unknown = await run.state.get()
    const answer = await run.interrupt({ reason: 'approval', message: 'ok?', timeout: 60_000 })
    const status: 'resolved' | 'cancelled' = answer.status
    // @ts-expect-error an interrupt needs a reason
    await run.interrupt({ message: 'no reason' })
    return { threadId, resumed, status, state, aborted: signal.aborted }
  },
  { window: 50 }
)

const event: AguiEvent = { type: 'RUN_ERROR', message: 'x', code: 'cancelled' }
// @ts-expect-error RUN_ERROR needs a message
const bad: AguiEvent = { type: 'RUN_ERROR', code: 'cancelled' }

const client = createClient({ url: 'ws://127.0.0.1/ws' })
const agent = new RealtimeAgent({ client, url: 'http://127.0.0.1/agent', threadId: 't', headers: { authorization: 'Bearer x' } })
const room: string = aguiLogRoom('t', 'r')
// A client typed by the app's registries fits too, whatever its events carry (here a bare string).
const typed = createClient<typeof events & { 'note:text': ReturnType<typeof Type.String> }>({ url: 'ws://127.0.0.1/ws' })
const typedAgent = new RealtimeAgent({ client: typed, url: 'http://127.0.0.1/agent' })
// @ts-expect-error the agent needs a client, not its URL
new RealtimeAgent({ client: 'ws://127.0.0.1/ws', url: 'http://127.0.0.1/agent' })
// @ts-expect-error nor something with a subscribe() of another shape
new RealtimeAgent({ client: { subscribe: (room: number) => room, cancel: async () => {} }, url: 'http://127.0.0.1/agent' })

export { agent, bad, event, room, typedAgent }
