// Reliability 12: Redis killed and restarted, the pub/sub connections killed, Redis paused, all mid-stream.
// Every client ends with the full sequence or an explicit `recovered: false`, never a silent gap.
import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { redisAdapter } from '../../src/adapters/redis.js'
import { sdk, until, watchRoom } from '../helpers/client.js'
import { buildApp, catchUncaught, sign } from '../helpers/index.js'
import { ownRedisUnavailable, type RedisServer, requireRedis, startRedis } from '../helpers/redis.js'

const skip = requireRedis(t, ownRedisUnavailable())
const ROOM = 'workflow:faults'
const CLIENTS = 10

async function setUp(t: Test, redis: RedisServer) {
  const uncaught = catchUncaught(t)
  const apps: FastifyInstance[] = []
  for (let i = 0; i < 2; i++) {
    apps.push(
      await buildApp(t, { authorize: () => true, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix, commandTimeout: 3000 }) })
    )
  }
  const watches = Array.from({ length: CLIENTS }, (_, i) =>
    watchRoom(sdk(t, apps[i % 2] as FastifyInstance, { token: sign(`u${i}`) }), ROOM)
  )
  await until(() => watches.every((w) => w.subscribed === 1), 5000, 'every client subscribed')
  return { apps, watches, uncaught }
}

/** Emits `n` events from the instances in turn, one every `every` ms; counts the emits that failed, by error code. */
async function stream(apps: FastifyInstance[], n: number, every: number, during?: (i: number) => Promise<void> | void) {
  const failed = new Map<string, number>()
  let sent = 0
  for (let i = 0; i < n; i++) {
    await during?.(i)
    try {
      await (apps[i % apps.length] as FastifyInstance).realtime.emit(ROOM, {
        type: 'agent:thought',
        data: { runId: 'r', content: `e${i}` }
      })
      sent++
    } catch (err) {
      const code = (err as { code?: string }).code ?? 'unknown'
      failed.set(code, (failed.get(code) ?? 0) + 1)
    }
    await delay(every)
  }
  return { sent, failed }
}

t.test('Redis killed for 5 s and restarted mid-stream: no crash, emits fail clearly, clients recover or are told', { skip }, async (t) => {
  const redis = await startRedis(t)
  const { apps, watches, uncaught } = await setUp(t, redis)
  let restartedAt = 0
  let backAfter = -1
  const { sent, failed } = await stream(apps, 200, 10, async (i) => {
    if (i === 60) {
      await redis.kill()
      setTimeout(() => {
        redis.start().then(() => {
          restartedAt = Date.now()
        })
      }, 5000)
    }
  })
  // Wait for Redis to be back and the adapter with it, then stream on.
  await until(() => restartedAt > 0, 15_000, 'redis restarted')
  while (backAfter < 0) {
    try {
      await (apps[0] as FastifyInstance).realtime.emit(ROOM, { type: 'agent:thought', data: { runId: 'r', content: 'probe' } })
      backAfter = Date.now() - restartedAt
    } catch {
      await delay(20)
    }
  }
  const more = await stream(apps, 50, 5)
  await until(() => watches.every((w) => w.seqs.length > 0 && w.seqs.at(-1) === more.sent + 1), 10_000, 'every client at the end')
  t.same(uncaught, [], '0 uncaught exceptions, 0 unhandled rejections')
  t.ok(
    failed.size > 0 && [...failed.keys()].every((code) => code === 'FST_REALTIME_ADAPTER_FAILED'),
    `emits failed with a clear code: ${JSON.stringify(Object.fromEntries(failed))}`
  )
  t.ok(backAfter < 2000, `the adapter was back ${backAfter} ms after Redis`)
  t.equal(
    watches.reduce((n, w) => n + w.gaps, 0),
    0,
    'no silent gap: every break came with subscribed'
  )
  t.ok(
    watches.every((w) => w.notRecovered >= 1),
    'every client was told recovered: false (the new Redis has none of the old history)'
  )
  t.comment(
    `reliability/redis-restart: ${sent} emits before the outage and during it succeeded, ${JSON.stringify(Object.fromEntries(failed))} failed; ` +
      `adapter back ${backAfter} ms after Redis; ${CLIENTS} clients, 0 silent gaps`
  )
})

t.test(
  'the pub/sub connections killed (CLIENT KILL TYPE pubsub): every client gets the full sequence, with no reconnect',
  { skip },
  async (t) => {
    const redis = await startRedis(t)
    const { apps, watches, uncaught } = await setUp(t, redis)
    const admin = redis.admin()
    let killed = 0
    const { sent, failed } = await stream(apps, 150, 5, async (i) => {
      if (i === 50 || i === 100) killed += Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))
    })
    await until(() => watches.every((w) => w.seqs.length === sent), 10_000, 'every client has every event')
    t.same(uncaught, [])
    t.equal(failed.size, 0, 'no emit failed: the command connections stayed up')
    t.ok(killed >= 2, `${killed} pub/sub connections killed`)
    for (const w of watches) {
      t.same(
        w.seqs,
        Array.from({ length: sent }, (_, i) => i + 1)
      )
    }
    t.ok(
      watches.every((w) => w.subscribed === 1),
      'the missed events were filled from the history: no client had to resubscribe'
    )
  }
)

t.test('Redis paused for 1 s (CLIENT PAUSE): emits wait, every client gets the full sequence', { skip }, async (t) => {
  const redis = await startRedis(t)
  const { apps, watches, uncaught } = await setUp(t, redis)
  const admin = redis.admin()
  let pausedFor = 0
  const { sent, failed } = await stream(apps, 100, 5, async (i) => {
    if (i === 40) {
      await admin.client('PAUSE', 1000, 'ALL')
      const started = Date.now()
      await (apps[0] as FastifyInstance).realtime.emit(ROOM, { type: 'agent:thought', data: { runId: 'r', content: 'during pause' } })
      pausedFor = Date.now() - started
    }
  })
  const total = sent + 1
  await until(() => watches.every((w) => w.seqs.length === total), 10_000, 'every client has every event')
  t.same(uncaught, [])
  t.equal(failed.size, 0)
  t.ok(pausedFor >= 800, `an emit during the pause waited ${pausedFor} ms`)
  for (const w of watches) {
    t.same(
      w.seqs,
      Array.from({ length: total }, (_, i) => i + 1)
    )
  }
})
