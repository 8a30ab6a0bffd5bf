// Several instances on one real Redis: fan-out, resume on another instance, presence across instances and after a crash.
import { spawn } from 'node:child_process'
import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { redisAdapter } from '../src/adapters/redis.js'
import type { RealtimeOptions } from '../src/index.js'
import { buildApp, connect, SECRET, sign, type TestClient } from './helpers/index.js'
import { requireRedis, startRedis } from './helpers/redis.js'

const skip = requireRedis(t)
const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'run', content } })

async function cluster(t: Test, n: number, url: string, prefix: string, options: RealtimeOptions = {}): Promise<FastifyInstance[]> {
  const apps: FastifyInstance[] = []
  for (let i = 0; i < n; i++) {
    apps.push(await buildApp(t, { authorize: () => true, adapter: redisAdapter({ url, keyPrefix: prefix }), ...options }))
  }
  return apps
}

t.test('3 instances: emits from each reach every subscriber on every instance, in one seq order', { skip }, async (t) => {
  const redis = await startRedis(t)
  const apps = await cluster(t, 3, redis.url, redis.prefix)
  const clients: TestClient[] = []
  for (let i = 0; i < 9; i++) clients.push(await connect(apps[i % 3] as FastifyInstance, `u${i}`))
  const subs = await Promise.all(clients.map((c) => c.subscribe('workflow:cluster')))
  t.equal(new Set(subs.map((s) => s.data.epoch)).size, 1, 'every instance reports the same epoch')
  const results = []
  for (let i = 0; i < 30; i++) results.push(await (apps[i % 3] as FastifyInstance).realtime.emit('workflow:cluster', thought(`e${i}`)))
  t.same(
    results.map((r) => r.seq),
    Array.from({ length: 30 }, (_, i) => i + 1),
    'seq is global'
  )
  for (const c of clients) {
    const got = await c.collect('agent:thought', 30)
    t.same(
      got.map((e) => [e.seq, e.data.content]),
      Array.from({ length: 30 }, (_, i) => [i + 1, `e${i}`])
    )
  }
  const stats = apps.map((a) => a.realtime.stats().subscriptions)
  t.same(stats, [3, 3, 3])
})

t.test('a client resumes on another instance with no gap and no duplicate', { skip }, async (t) => {
  const redis = await startRedis(t)
  const [a, b] = (await cluster(t, 2, redis.url, redis.prefix)) as [FastifyInstance, FastifyInstance]
  const first = await connect(a, 'alice')
  const { epoch } = (await first.subscribe('workflow:move')).data
  for (let i = 1; i <= 3; i++) await a.realtime.emit('workflow:move', thought(`e${i}`))
  t.same(
    (await first.collect('agent:thought', 3)).map((e) => e.seq),
    [1, 2, 3]
  )
  await first.close()
  for (let i = 4; i <= 6; i++) await a.realtime.emit('workflow:move', thought(`e${i}`))
  const moved = await connect(b, 'alice')
  const sub = await moved.subscribe('workflow:move', { since: 3, epoch })
  t.same(sub.data, { seq: 3, epoch, recovered: true })
  await a.realtime.emit('workflow:move', thought('e7'))
  t.same(
    (await moved.collect('agent:thought', 4)).map((e) => [e.seq, e.data.content]),
    [
      [4, 'e4'],
      [5, 'e5'],
      [6, 'e6'],
      [7, 'e7']
    ]
  )
  await delay(30)
  t.equal(moved.frames.length, 0, 'no duplicate')
  const stale = await connect(b, 'bob')
  const lost = await stale.subscribe('workflow:move', { since: 2, epoch: 'not-the-epoch' })
  t.same({ recovered: lost.data.recovered, seq: lost.data.seq }, { recovered: false, seq: 7 }, 'an unknown epoch is told, not guessed')
})

t.test('presence across instances: one member per user, join and leave reach every instance', { skip }, async (t) => {
  const redis = await startRedis(t)
  const [a, b] = (await cluster(t, 2, redis.url, redis.prefix, {
    presence: (room) => room.startsWith('doc:'),
    presenceInfo: ({ user }) => ({ name: String(user.name ?? user.sub) })
  })) as [FastifyInstance, FastifyInstance]
  const watcher = await connect(a, 'watcher')
  await watcher.subscribe('doc:1')
  t.same((await watcher.next('join')).data, { user: 'watcher', connections: 1, info: { name: 'watcher' } })
  const tab1 = await connect(b, 'ann', { token: sign('ann', { name: 'Ann' }) })
  const tab2 = await connect(a, 'ann', { token: sign('ann', { name: 'Ann' }) })
  await tab1.subscribe('doc:1')
  t.same((await watcher.next('join')).data, { user: 'ann', connections: 1, info: { name: 'Ann' } }, 'from instance B')
  await tab2.subscribe('doc:1')
  const list = await watcher.call({ type: 'presence', id: 'p1', room: 'doc:1' })
  t.same(
    list.data.members.sort((x: { user: string }, y: { user: string }) => x.user.localeCompare(y.user)),
    [
      { user: 'ann', connections: 2, info: { name: 'Ann' } },
      { user: 'watcher', connections: 1, info: { name: 'watcher' } }
    ]
  )
  t.same((await b.realtime.presence('doc:1')).length, 2, 'app.realtime.presence() on either instance')
  await tab1.close()
  await delay(100)
  t.equal(watcher.frames.filter((f) => f.type === 'leave').length, 0, 'ann still has a tab open')
  await tab2.close()
  t.same((await watcher.next('leave')).data, { user: 'ann', connections: 0 })
  const outsider = await connect(b, 'eve')
  await outsider.subscribe('plain')
  t.same((await outsider.call({ type: 'presence', id: 'p2', room: 'plain' })).data.code, 'forbidden', 'presence is off there')
  t.same((await outsider.call({ type: 'presence', id: 'p3', room: 'doc:1' })).data.code, 'forbidden', 'only for members')
})

t.test('presence after an instance is killed: its users leave within the presence ttl', { skip }, async (t) => {
  const redis = await startRedis(t)
  const heartbeat = { interval: 150, timeout: 150 }
  const [survivor] = (await cluster(t, 1, redis.url, redis.prefix, { presence: true, heartbeat })) as [FastifyInstance]
  const child = spawn(process.execPath, ['test/fixtures/instance.mjs'], {
    env: { ...process.env, REDIS_URL: redis.url, KEY_PREFIX: redis.prefix, JWT_SECRET: SECRET, HEARTBEAT_MS: '150' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (line: Buffer) => resolve(Number(String(line).trim())))
    child.once('exit', (code) => reject(new Error(`instance exited with ${code}`)))
  })
  const watcher = await connect(survivor, 'watcher')
  await watcher.subscribe('room:1')
  await watcher.next('join')
  const doomed = await connect({ server: { address: () => ({ port }) } } as unknown as FastifyInstance, 'doomed')
  await doomed.subscribe('room:1')
  t.same((await watcher.next('join')).data, { user: 'doomed', connections: 1 })
  const killedAt = Date.now()
  child.kill('SIGKILL')
  const leave = await watcher.next('leave', 5000)
  const after = Date.now() - killedAt
  t.same(leave.data, { user: 'doomed', connections: 0 })
  t.same(await survivor.realtime.presence('room:1'), [{ user: 'watcher', connections: 1 }])
  await delay(400)
  t.equal(watcher.frames.filter((f) => f.type === 'leave').length, 0, 'told once')
  t.comment(`presence leave ${after} ms after the instance was killed (ttl ${2 * heartbeat.interval + heartbeat.timeout} ms)`)
})
