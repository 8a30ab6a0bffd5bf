// Type tests of fastify-realtime/emitter and the serverApi option: the emitter is typed by the registry it is given.
// Compiled by test/types.test.ts; every @ts-expect-error must be needed, or the compile fails.
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { createEmitter, type Emitter } from '../../src/emitter.js'
import realtime, { agentEvents, defineEvents, type EmitResult, type StreamHandle, Type } from '../../src/index.js'

const events = defineEvents({ ...agentEvents, 'invoice:paid': Type.Object({ invoiceId: Type.String() }) })

const emitter: Emitter<typeof events> = await createEmitter({ redis: new Redis(), keyPrefix: 'app:', events })
const done: EmitResult = await emitter.emit('billing', { type: 'invoice:paid', data: { invoiceId: 'i1' } })
// @ts-expect-error invoiceId is a string
await emitter.emit('billing', { type: 'invoice:paid', data: { invoiceId: 1 } })
// @ts-expect-error not an event of the registry
await emitter.emit('billing', { type: 'invoice:lost', data: {} })
const stream: StreamHandle = emitter.stream('workflow:1', { type: 'agent:thought', data: { runId: 'r', content: '' } })
const answer: { ok: boolean } = await emitter.ask<{ ok: boolean }>(
  { user: 'alice' },
  {
    type: 'hitl_request',
    data: { requestId: 'q', question: 'Go?' }
  }
)
const value: number = await emitter.run({ room: 'workflow:1', runId: 'r' }, (signal) => (signal.aborted ? 0 : 1))
await emitter.cancel({ room: 'workflow:1', runId: 'r' })
await emitter.close()

// Without events, the agentEvents preset.
const preset = await createEmitter({ redis: 'redis://127.0.0.1:6379' })
await preset.emit('workflow:1', { type: 'agent:thought', data: { runId: 'r', content: 'hi' } })
// @ts-expect-error invoice:paid is not in the preset
await preset.emit('workflow:1', { type: 'invoice:paid', data: { invoiceId: 'i1' } })

const app = Fastify()
await app.register(realtime, {
  jwt: { secret: 'x'.repeat(32) },
  serverApi: { keys: ['k'.repeat(16)], verify: async (token) => token.length > 0, rateLimit: false, openapi: true }
})
// @ts-expect-error keys are strings
await app.register(realtime, { jwt: { secret: 'x'.repeat(32) }, serverApi: { keys: [1] } })

export { answer, done, stream, value }
