// fastify-realtime/emitter in this process, and the server API on Redis: a worker with no HTTP server reaches the
// clients of every instance; a Redis outage is a 503; an idempotency key holds across instances.
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { redisAdapter } from '../src/adapters/redis.js'
import { createEmitter } from '../src/emitter.js'
import { agentEvents, defineEvents, Type } from '../src/index.js'
import { connectTest } from '../src/testing.js'
import { buildApp } from './helpers/index.js'
import { requireRedis, startRedis } from './helpers/redis.js'

const skip = requireRedis(t)
const KEY = 'cluster-api-key-0123456789'
const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'w', content } })

async function instance(t: Parameters<typeof buildApp>[0], url: string, keyPrefix: string, options = {}): Promise<FastifyInstance> {
  return buildApp(t, { authorize: () => true, adapter: redisAdapter({ url, keyPrefix }), serverApi: { keys: [KEY] }, ...options })
}

async function post(app: FastifyInstance, route: string, body: unknown, headers: Record<string, string> = {}) {
  const { port } = app.server.address() as { port: number }
  const res = await fetch(`http://127.0.0.1:${port}/ws/api${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body)
  })
  return { status: res.status, body: await res.json() }
}

t.test('an emitter emits, streams and asks to clients on two instances, and cancels runs there', { skip }, async (t) => {
  const redis = await startRedis(t)
  const apps = [await instance(t, redis.url, redis.prefix), await instance(t, redis.url, redis.prefix)]
  const clients = await Promise.all(apps.map((app, i) => connectTest(app, { user: `u${i}` })))
  for (const c of clients) await c.subscribe('workflow:e')
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const emitter = await createEmitter({ redis: client, keyPrefix: redis.prefix, events: agentEvents })
  t.teardown(() => emitter.close())

  t.match(await emitter.emit('workflow:e', thought('from a worker')), { room: 'workflow:e', seq: 1 })
  const stream = emitter.stream('workflow:e', thought(''))
  stream.append('Hello, ')
  stream.append('world')
  t.match(await stream.end(), { seq: 2 })
  for (const c of clients) {
    t.same((await c.next('agent:thought')).data, { runId: 'w', content: 'from a worker' })
    const final = await c.next('agent:thought')
    t.match(final, { seq: 2, stream: stream.id, data: { content: 'Hello, world' } })
  }
  t.throws(() => emitter.emit('workflow:e', { type: 'agent:thought', data: { runId: 'w' } } as never), {
    code: 'FST_REALTIME_INVALID_EVENT'
  })

  // A question from the worker, answered by a client on the second instance.
  const answer = emitter.ask('workflow:e', { type: 'hitl_request', data: { requestId: 'q', question: 'Go?' } })
  const asked = await (clients[1] as (typeof clients)[1]).next('hitl_request')
  clients[1]?.answer(asked, 'go')
  t.equal(await answer, 'go')

  // A run in the worker, cancelled by a client on the first instance.
  const cancelled = emitter.run(
    { room: 'workflow:e', runId: 'job' },
    (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(signal.reason.message)))
  )
  await clients[0]?.cancel('workflow:e', 'job')
  t.match(await cancelled, /cancelled by user u0/)
  const byApp = emitter.run(
    { room: 'workflow:e', runId: 'job2' },
    (signal) => new Promise((resolve) => signal.addEventListener('abort', () => resolve(true)))
  )
  await emitter.cancel({ room: 'workflow:e', runId: 'job2' })
  t.equal(await byApp, true)

  // The API of one instance disconnects a user connected to the other.
  t.same((await post(apps[0] as FastifyInstance, '/disconnect', { user: 'u1', code: 4400, reason: 'logged out' })).body, { user: 'u1' })
  t.same(await clients[1]?.closed, { code: 4400, reason: 'logged out' })
})

t.test('an emitter from a URL uses its own connections and closes them; its options are checked', { skip }, async (t) => {
  const redis = await startRedis(t)
  const app = await instance(t, redis.url, redis.prefix)
  const c = await connectTest(app, { user: 'u' })
  await c.subscribe('workflow:u')
  const events = defineEvents({ ...agentEvents, 'invoice:paid': Type.Object({ id: Type.String() }) })
  const emitter = await createEmitter({ redis: redis.url, keyPrefix: redis.prefix, events })
  await emitter.emit('workflow:u', { type: 'invoice:paid', data: { id: 'i1' } })
  t.same((await c.next('invoice:paid' as never)).data, { id: 'i1' })
  const open = emitter.stream('workflow:u', { type: 'agent:thought', data: { runId: 'w', content: '' } })
  await emitter.close()
  open.append('after close')
  await t.rejects(open.end(), 'a stream cannot end once its emitter is closed')
  const bad: Array<[unknown, RegExp]> = [
    [{ redis: 42 }, /option "redis" must be an ioredis client or a redis:\/\/ URL \(got number\)/],
    [{ redis: redis.url, keyPrefix: 5 }, /option "keyPrefix" must be a string/],
    [{ redis: redis.url, port: 1 }, /unknown option "port"/],
    [{ redis: redis.url, events: { nope: 1 } }, /option "events"/],
    [{ redis: redis.url, requestTimeout: -1 }, /option "requestTimeout" must be a positive integer/]
  ]
  for (const [options, message] of bad) await t.rejects(createEmitter(options as never), { code: 'FST_REALTIME_INVALID_OPTION', message })
})

t.test(
  'with Redis down the server API answers 503 adapter_failed, and a retry with the key after it is back publishes once',
  { skip },
  async (t) => {
    const redis = await startRedis(t)
    const apps = [await instance(t, redis.url, redis.prefix), await instance(t, redis.url, redis.prefix)]
    const c = await connectTest(apps[1] as FastifyInstance, { user: 'u' })
    await c.subscribe('workflow:d')
    const body = { room: 'workflow:d', ...thought('exactly once') }
    const first = await post(apps[0] as FastifyInstance, '/publish', body, { 'idempotency-key': 'once' })
    t.equal(first.status, 200)
    const retry = await post(apps[1] as FastifyInstance, '/publish', body, { 'idempotency-key': 'once' })
    t.same(retry, first, 'a retry on the other instance gets the same answer')

    await redis.kill()
    for (const [route, payload] of [
      ['/publish', body],
      ['/publish', { ...body, data: { runId: 'w', content: 'keyed' } }],
      ['/batch', { events: [body] }],
      ['/questions', { room: 'workflow:d', type: 'hitl_request', data: { requestId: 'q', question: '?' } }],
      ['/cancel', { room: 'workflow:d', runId: 'r' }],
      ['/disconnect', { user: 'u' }]
    ] as const) {
      const down = await post(
        apps[0] as FastifyInstance,
        route,
        payload,
        route === '/publish' ? { 'idempotency-key': `k-${JSON.stringify(payload).length}` } : {}
      )
      t.match(down, { status: 503, body: { statusCode: 503, code: 'adapter_failed' } }, `${route} while Redis is down`)
    }
    const { port } = (apps[0] as FastifyInstance).server.address() as { port: number }
    const presence = await fetch(`http://127.0.0.1:${port}/ws/api/presence?room=workflow:d`, {
      headers: { authorization: `Bearer ${KEY}` }
    })
    t.equal(presence.status, 503)
    await redis.start()
    await c.closed.catch(() => undefined)
    // Both instances reconnect by themselves; each is used once it answers again.
    const warm = async (work: () => Promise<boolean>) => {
      for (let i = 0; i < 100 && !(await work().catch(() => false)); i++) await new Promise((r) => setTimeout(r, 50))
    }
    await warm(async () => (await post(apps[0] as FastifyInstance, '/publish', { room: 'workflow:warm', ...thought('w') })).status === 200)
    const c2 = await connectTest(apps[1] as FastifyInstance, { user: 'u2' })
    await warm(async () => (await c2.subscribe('workflow:d')) !== undefined)
    const back = await post(apps[0] as FastifyInstance, '/publish', body, { 'idempotency-key': 'after' })
    t.equal(back.status, 200, 'once Redis is back, the API publishes again')
    t.same(await post(apps[1] as FastifyInstance, '/publish', body, { 'idempotency-key': 'after' }), back)
    await post(apps[0] as FastifyInstance, '/publish', { room: 'workflow:d', ...thought('marker') })
    t.equal((await c2.next('agent:thought')).data.content, 'exactly once')
    t.equal((await c2.next('agent:thought')).data.content, 'marker', 'the retries published nothing more')
  }
)
