// What the published declarations promise beyond the README: error classes keep their codes and statuses, `app.jwt` is
// typed without importing @fastify/jwt, and the emitter is typed by its registry. Compiled against the packed package
// in every moduleResolution.
import Fastify from 'fastify'
import realtime, { FST_REALTIME_INVALID_OPTION, FST_REALTIME_UNAUTHORIZED, RealtimeError } from 'fastify-realtime'
import { createEmitter, type Emitter } from 'fastify-realtime/emitter'

const unauthorized = new FST_REALTIME_UNAUTHORIZED('no token')
const code: 'FST_REALTIME_UNAUTHORIZED' = unauthorized.code
const status: 401 = unauthorized.statusCode
// @ts-expect-error the code is a literal type, not any
const wrongCode: 'FST_REALTIME_CLOSING' = unauthorized.code
const called: TypeError | Error = FST_REALTIME_INVALID_OPTION('option "path" must be a string')
const caught = new RealtimeError('quota_exceeded', 'No runs left today').code

const app = Fastify()
await app.register(realtime, { jwt: { secret: 'x'.repeat(32) } })
const token: string = app.jwt.sign({ sub: 'u1' })
// @ts-expect-error app.jwt is @fastify/jwt's decorator, not any
app.jwt.signEverything()

// The emitter is typed by the registry (the agentEvents preset here), not any.
const emitter: Emitter = await createEmitter({ redis: 'redis://127.0.0.1:6379' })
await emitter.emit('workflow:1', { type: 'agent:thought', data: { runId: 'r', content: 'hi' } })
// @ts-expect-error not an event of the registry
await emitter.emit('workflow:1', { type: 'invoice:lost', data: {} })

export { called, caught, code, status, token, wrongCode }
