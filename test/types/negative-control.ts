// Must NOT compile: test/types.test.ts checks that the compiler reports exactly these two errors,
// which proves the type tests can fail.
import Fastify from 'fastify'
import realtime from '../../src/index.js'

const app = Fastify()
await app.register(realtime, { jwt: { secret: 'x'.repeat(32) } })
await app.realtime.emit('r', { type: 'agent:thougth', data: { runId: 'r', content: 'x' } })
await app.realtime.emit('r', { type: 'agent:thought', data: { runId: 'r', content: 1 } })
