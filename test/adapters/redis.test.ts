import Fastify from 'fastify'
import { Redis } from 'ioredis'
import t from 'tap'
import { redisAdapter } from '../../src/adapters/redis.js'
import realtime from '../../src/index.js'
import { buildApp, connect, SECRET } from '../helpers/index.js'
import { requireRedis, startRedis } from '../helpers/redis.js'
import { adapterContract } from './contract.js'

const skip = requireRedis(t)

t.test('the Redis adapter passes the adapter contract', { skip }, async (t) => {
  const redis = await startRedis(t)
  adapterContract(t, { make: () => redisAdapter({ url: redis.url, keyPrefix: redis.prefix }), shared: true })
})

t.test('an unreachable Redis fails registration with a message that says where it was looked for', { skip }, async (t) => {
  const { freePort } = await import('../helpers/browser.js')
  const port = await freePort()
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(realtime, {
    jwt: { secret: SECRET },
    adapter: redisAdapter({ url: `redis://user:hunter2@127.0.0.1:${port}`, connectTimeout: 300 })
  })
  await t.rejects(async () => app.ready(), { message: `could not reach Redis at redis://***@127.0.0.1:${port} within 300 ms` })
})

t.test('pingInterval must be a whole number of ms (0 turns the liveness check off)', async (t) => {
  for (const bad of [-1, 1.5, Number.NaN, 2 ** 31]) {
    t.throws(() => redisAdapter({ pingInterval: bad }), {
      code: 'FST_REALTIME_INVALID_OPTION',
      message: /option "pingInterval" must be a whole number of ms/
    })
  }
  t.doesNotThrow(() => redisAdapter({ pingInterval: 0 }))
})

t.test("with the application's own ioredis client: used for commands, duplicated for pub/sub, never closed", { skip }, async (t) => {
  const redis = await startRedis(t)
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  await client.ping()
  const app = await buildApp(t, { authorize: () => true, adapter: redisAdapter({ client, keyPrefix: redis.prefix }) })
  const admin = redis.admin()
  // A reconnect while no room is held, then scripts Redis has forgotten, then a message that is none of ours.
  await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
  await new Promise((resolve) => setTimeout(resolve, 300))
  await admin.call('SCRIPT', 'FLUSH')
  const c = await connect(app)
  await c.subscribe('own')
  await admin.publish(`${redis.prefix}ch:own`, 'garbage')
  await app.realtime.emit('own', { type: 'agent:thought', data: { runId: 'r', content: 'via the given client' } })
  t.equal((await c.next('agent:thought')).data.content, 'via the given client')
  t.ok((await client.exists(`${redis.prefix}{own}:stream`)) === 1, 'the history is in Redis under the prefix')
  await app.close()
  t.equal(await client.ping(), 'PONG', 'the given client is still open after app.close()')
})
