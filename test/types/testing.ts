// Type tests of fastify-realtime/testing: typed by the merged registry, or by type arguments.
// Compiled by test/types.test.ts; every @ts-expect-error must be needed, or the compile fails.
import Fastify from 'fastify'
import realtime, { agentEvents, defineEvents, Type } from '../../src/index.js'
import { connectTest, type RealtimeClientError, type TestFrame } from '../../src/testing.js'

const events = defineEvents({ ...agentEvents, 'invoice:paid': Type.Object({ invoiceId: Type.String() }) })
const messages = { 'run:start': Type.Object({ prompt: Type.String() }) }

declare module '../../src/types.js' {
  interface RealtimeRegistry {
    events: typeof events
  }
}

const app = Fastify()
await app.register(realtime, { events, jwt: { secret: 'x'.repeat(32) } })

// Typed by the merged registry.
const client = await connectTest(app, { user: 'alice' })
const paid = await client.next('invoice:paid')
const invoiceId: string = paid.data.invoiceId
// @ts-expect-error invoiceId is a string
const wrong: number = paid.data.invoiceId
const any: TestFrame = await client.next()
const info = await client.subscribe('billing', { since: 3, epoch: 'e' })
const recovered: boolean = info.recovered

// send typed by the handle() schemas given as a type argument.
const typed = await connectTest<typeof events, typeof messages>(app)
const ack = await typed.send<'run:start', { runId: string }>('run:start', { prompt: 'go' })
const runId: string = ack.runId
// @ts-expect-error prompt must be a string
await typed.send('run:start', { prompt: 1 })
// @ts-expect-error no such message
await typed.send('run:stop', {})
typed.answer(await typed.next('hitl_request'), { optionId: 'yes' })
// @ts-expect-error transport is socket or inject
await connectTest(app, { transport: 'tcp' })
const failure = (e: RealtimeClientError): string => e.code

export { any, failure, invoiceId, recovered, runId, wrong }
