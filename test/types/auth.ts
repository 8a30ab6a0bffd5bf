// Types of the authentication options and of the server-side rooms: authenticate, subscriptions, jwt.cookie, a JWKS
// secret function, origins, emit to several rooms or a user, join options and leave.
// Compiled by test/types.test.ts; every @ts-expect-error must be needed, or the compile fails.
import Fastify from 'fastify'
import realtime, { type EmitResult } from '../../src/index.js'

const thought = { type: 'agent:thought' as const, data: { runId: 'r', content: 'x' } }
const app = Fastify()
await app.register(realtime, {
  authenticate: async (request) => (request.headers['x-api-key'] === 'k' ? { sub: 'bob', plan: 'pro' } : null),
  subscriptions: (user, request) => [`user:${user.sub}`, `tenant:${String(request.headers['x-tenant'])}`],
  cors: { origin: ['https://app.example', /\.preview\.example$/] }
})
await app.register(realtime, {
  jwt: { secret: async (_request, token) => `key-${token.header.kid}`, cookie: 'token' },
  cors: { origin: async (origin: string) => origin.endsWith('.example') }
})

const one: EmitResult = await app.realtime.emit({ user: 'bob' }, thought)
const many: EmitResult[] = await app.realtime.emit(['a', 'b'], thought)
const joined: number = await app.realtime.join({ user: 'bob' }, 'project:1', { remember: false })
const left: number = await app.realtime.leave('connection-id', 'project:1')
void [one, many, joined, left]

// @ts-expect-error a list of rooms resolves with one result per room
const wrong: EmitResult = await app.realtime.emit(['a'], thought)
// @ts-expect-error the user target names the user by `user`
await app.realtime.emit({ id: 'bob' }, thought)
// @ts-expect-error remember is a boolean
await app.realtime.join({ user: 'bob' }, 'project:1', { remember: 'yes' })
// @ts-expect-error an origin is a string, a RegExp, a list of them or a function
await app.register(realtime, { jwt: { secret: 'x'.repeat(32) }, cors: { origin: 42 } })
// @ts-expect-error a user needs a sub
await app.register(realtime, { authenticate: () => ({ name: 'no id' }) })
void wrong
