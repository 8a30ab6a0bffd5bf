// A consumer of the published package: imports by package name and merges its registry
// into 'fastify-realtime', as the README shows.
import Fastify from 'fastify'
import realtime, { agentEvents, defineEvents, Type } from 'fastify-realtime'
import { CloseCode, type EventMessage, SUBPROTOCOL } from 'fastify-realtime/client'
import { connectTest } from 'fastify-realtime/testing'

const events = defineEvents({ ...agentEvents, 'invoice:paid': Type.Object({ invoiceId: Type.String() }) })

declare module 'fastify-realtime' {
  interface RealtimeRegistry {
    events: typeof events
  }
}

const app = Fastify()
await app.register(realtime, { events, jwt: { secret: 'x'.repeat(32) } })
await app.realtime.emit('billing', { type: 'invoice:paid', data: { invoiceId: 'in_1' } })
// @ts-expect-error invoiceId must be a string
await app.realtime.emit('billing', { type: 'invoice:paid', data: { invoiceId: 1 } })
// @ts-expect-error unknown event
await app.realtime.emit('billing', { type: 'invoice:void', data: {} })

const tester = await connectTest(app, { user: 'u1' })
const paid: string = (await tester.next('invoice:paid')).data.invoiceId
// @ts-expect-error not in the merged registry
await tester.next('invoice:void')

const code: 4008 = CloseCode.SlowConsumer
const protocol: 'realtime.v1' = SUBPROTOCOL
const message: EventMessage<'invoice:paid', { invoiceId: string }> = {
  type: 'invoice:paid',
  room: 'b',
  seq: 1,
  data: { invoiceId: 'x' },
  ts: ''
}

export { code, message, paid, protocol }
