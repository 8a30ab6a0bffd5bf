// State rooms across instances on one real Redis: concurrent writers lose no update, and the value follows a client
// from one instance to another.
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { redisAdapter } from '../src/adapters/redis.js'
import { sdk, until } from './helpers/client.js'
import { buildApp, connect, type Frame, sign } from './helpers/index.js'
import { requireRedis, startRedis } from './helpers/redis.js'

const skip = requireRedis(t)

async function instances(t: Test, n: number): Promise<FastifyInstance[]> {
  const redis = await startRedis(t)
  const apps: FastifyInstance[] = []
  for (let i = 0; i < n; i++) {
    apps.push(await buildApp(t, { authorize: () => true, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) }))
  }
  return apps
}

t.test('two instances patching one room at once: every operation lands, in one order every subscriber sees', { skip }, async (t) => {
  const [a, b] = (await instances(t, 2)) as [FastifyInstance, FastifyInstance]
  const watchers = [await connect(a), await connect(b, 'bob')]
  for (const w of watchers) await w.subscribe('race')
  const n = 40
  const writes = (app: FastifyInstance, key: string) => {
    const state = app.realtime.state('race')
    return Promise.all(Array.from({ length: n }, (_, i) => state.patch([{ op: 'add', path: `/${key}${i}`, value: i }])))
  }
  await Promise.all([writes(a, 'a'), writes(b, 'b')])
  const value = (await a.realtime.state('race').get()) as Record<string, number>
  t.equal(Object.keys(value).length, 2 * n, 'no operation was lost')
  t.same(await b.realtime.state('race').get(), value, 'both instances read the same value')
  for (const w of watchers) {
    const versions = (await w.collect('state_patch', 2 * n)).map((f: Frame) => f.data.version)
    t.same(
      versions,
      Array.from({ length: 2 * n }, (_, i) => i + 1),
      'versions 1 to 80, in order, no gap'
    )
  }
})

t.test(
  'two instances setting one room at once: each set is computed against the one before, and clients end equal',
  { skip },
  async (t) => {
    const [a, b] = (await instances(t, 2)) as [FastifyInstance, FastifyInstance]
    const clients = [sdk(t, a, { token: sign('alice') }), sdk(t, b, { token: sign('bob') })]
    const views = clients.map((c) => c.liveState<Record<string, number>>('sets', () => {}))
    await until(() => clients.every((c) => c.state === 'open'), 3000, 'both clients')
    const n = 30
    const sets = (app: FastifyInstance, key: string) => {
      const state = app.realtime.state<Record<string, number>>('sets')
      return Promise.all(Array.from({ length: n }, (_, i) => state.set({ by: key === 'a' ? 1 : 2, [key]: i })))
    }
    const changes = (await Promise.all([sets(a, 'a'), sets(b, 'b')])).flat()
    t.same(
      changes.map((c) => c.version).sort((x, y) => x - y),
      Array.from({ length: 2 * n }, (_, i) => i + 1),
      'every set made its own version'
    )
    const final = await b.realtime.state('sets').get()
    await until(() => views.every((v) => v.version === 2 * n), 5000, 'both clients at the last version')
    for (const view of views) t.same(view.value, final, "the client's value is the server's")
  }
)

t.test('the value follows a client to another instance, and a late joiner there gets it', { skip }, async (t) => {
  const [a, b] = (await instances(t, 2)) as [FastifyInstance, FastifyInstance]
  const state = a.realtime.state('moves')
  await state.set({ step: 1 })
  const first = await connect(a)
  const subscribed = await first.subscribe('moves')
  await first.close()
  await state.set({ step: 2 })
  const moved = await connect(b)
  const resumed = await moved.subscribe('moves', { since: subscribed.data.seq, epoch: subscribed.data.epoch })
  t.equal(resumed.data.recovered, true, 'resumed on the other instance')
  t.same(resumed.data.state.value, { step: 2 })
  const late = await connect(b, 'carol')
  t.same((await late.subscribe('moves')).data.state, resumed.data.state, 'a late joiner gets the same value and version')
})
