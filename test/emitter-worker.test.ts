// A worker process (the package build, no HTTP server) publishes with the emitter to clients on two instances on Redis.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { redisAdapter } from '../src/adapters/redis.js'
import { connectTest } from '../src/testing.js'
import { buildApp } from './helpers/index.js'
import { requireRedis, startRedis } from './helpers/redis.js'

const skip = requireRedis(t)
const EVENTS = 300

t.test('a worker with the emitter reaches the clients of two instances, all in seq order', { skip }, async (t) => {
  const redis = await startRedis(t)
  const apps: FastifyInstance[] = []
  for (let i = 0; i < 2; i++) {
    apps.push(await buildApp(t, { authorize: () => true, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) }))
  }
  const clients = await Promise.all([0, 1, 2, 3].map((i) => connectTest(apps[i % 2] as FastifyInstance, { user: `u${i}` })))
  for (const c of clients) await c.subscribe('workflow:worker')
  const { stdout } = await promisify(execFile)(process.execPath, ['test/fixtures/emitter-worker.mjs'], {
    env: { ...process.env, REDIS_URL: redis.url, KEY_PREFIX: redis.prefix, ROOM: 'workflow:worker', EVENTS: String(EVENTS) }
  })
  t.match(JSON.parse(stdout), { room: 'workflow:worker', seq: EVENTS + 1 })
  const whole = Array.from({ length: 100 }, (_, i) => `w${i} `).join('')
  for (const [i, c] of clients.entries()) {
    const got: Array<[number | undefined, string]> = []
    for (let n = 0; n <= EVENTS; n++) {
      const e = await c.next('agent:thought')
      got.push([e.seq, e.data.content])
    }
    t.same(
      got,
      [...Array.from({ length: EVENTS }, (_, n): [number, string] => [n + 1, `e${n}`]), [EVENTS + 1, whole]],
      `client ${i} (instance ${i % 2}) got every event and the streamed text, in order`
    )
  }
})
