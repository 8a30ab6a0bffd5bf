// State rooms: app.realtime.state(room) on the server, `subscribed.data.state` and `state_patch` on the wire.
import t from 'tap'
import type { Adapter } from '../src/adapters/adapter.js'
import { memoryAdapter } from '../src/adapters/memory.js'
import { Type } from '../src/index.js'
import { buildApp, connect, type Frame } from './helpers/index.js'

const graph = (n: number) => ({ nodes: Array.from({ length: n }, (_, i) => ({ id: `n${i}`, status: 'pending' })) })

t.test('a subscriber gets the value and its version in subscribed, then each change as a patch with its version', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state('plan:1')
  t.equal(state.version, 0, 'no version before anything was read or set')
  t.equal(await state.get(), undefined, 'a room without state has no value')
  const first = await state.set(graph(3))
  t.same(first.ops, [{ op: 'replace', path: '', value: graph(3) }], 'the first version goes whole')
  t.equal(first.version, 1)
  const c = await connect(app)
  const subscribed = await c.subscribe('plan:1')
  t.same(subscribed.data.state, { value: graph(3), version: 1, epoch: subscribed.data.state.epoch })
  const next = graph(3)
  ;(next.nodes[1] as { status: string }).status = 'done'
  const change = await state.set(next)
  t.same(change.ops, [{ op: 'replace', path: '/nodes/1/status', value: 'done' }], 'only what changed')
  t.equal(state.version, 2)
  const patch = await c.next('state_patch')
  t.same(patch.data, { version: 2, epoch: subscribed.data.state.epoch, ops: change.ops })
  t.equal(patch.seq, change.event?.seq, 'the patch is an event of the room, with its seq')
  t.same(await state.get(), next)
})

t.test('patch() applies RFC 6902 operations and sends them as they were given', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state<{ items?: string[]; title?: string }>('doc')
  const c = await connect(app)
  await c.subscribe('doc')
  const made = await state.patch([{ op: 'add', path: '/items', value: ['a'] }])
  t.same(made.ops, [{ op: 'replace', path: '', value: { items: ['a'] } }], 'a room without state patches from {}, sent whole')
  const ops = [
    { op: 'add', path: '/items/-', value: 'b' },
    { op: 'test', path: '/items/0', value: 'a' },
    { op: 'add', path: '/title', value: 'T' }
  ] as const
  await state.patch([...ops])
  t.same((await c.next('state_patch')).data.version, 1)
  t.same((await c.next('state_patch')).data.ops, ops)
  t.same(await state.get(), { items: ['a', 'b'], title: 'T' })
})

t.test('a late joiner gets the value the server holds, whatever came before', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state('late')
  for (let i = 0; i < 20; i++) await state.patch([{ op: 'add', path: `/k${i}`, value: i }])
  const c = await connect(app, 'bob')
  const subscribed = await c.subscribe('late')
  t.same(subscribed.data.state.value, await state.get())
  t.equal(subscribed.data.state.version, 20)
})

t.test('a resumed subscriber gets the value again with recovered: true, and the replayed patches after it are old', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state('resume')
  await state.set({ a: 1 })
  const c = await connect(app)
  const first = await c.subscribe('resume')
  await c.close()
  await state.set({ a: 2 })
  const again = await connect(app)
  const resumed = await again.subscribe('resume', { since: first.data.seq, epoch: first.data.epoch })
  t.equal(resumed.data.recovered, true)
  t.same(resumed.data.state.value, { a: 2 })
  const replayed = await again.next('state_patch')
  t.ok(replayed.data.version <= resumed.data.state.version, 'the replayed patch is already in the value')
})

t.test('set() with the value it holds sends nothing and keeps the version', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state('same')
  await state.set({ a: [1, 2] })
  const c = await connect(app)
  await c.subscribe('same')
  const same = await state.set({ a: [1, 2] })
  t.same(same, { version: 1, ops: [], event: undefined })
  await app.realtime.emit('same', { type: 'agent:thought', data: { runId: 'r', content: 'marker' } })
  t.equal((await c.next()).type, 'agent:thought', 'the marker comes first: no patch was sent')
})

t.test('a value the caller changes after set() is not the one stored', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state('owned')
  const value = { n: 1 }
  await state.set(value)
  value.n = 2
  t.same(await state.get(), { n: 1 })
  const change = await state.set(value)
  t.same(change.ops, [{ op: 'replace', path: '/n', value: 2 }], 'and the next set() sees the change')
})

t.test('bad changes are refused with a clear error and change nothing', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const schema = Type.Object({ count: Type.Integer({ minimum: 0 }), tags: Type.Optional(Type.Array(Type.String())) })
  const state = app.realtime.state('strict', { schema })
  await state.set({ count: 1 })
  const c = await connect(app)
  await c.subscribe('strict')
  const refusals: Array<[string, () => Promise<unknown>, RegExp]> = [
    [
      'a value the schema refuses',
      () => state.set({ count: -1 }),
      /state\("strict"\): the value does not match its schema at \/count: .*; nothing changed/
    ],
    [
      'a patch that breaks the schema',
      () => state.patch([{ op: 'add', path: '/tags', value: [3] }]),
      /does not match its schema at \/tags\/0/
    ],
    ['a path that is not there', () => state.patch([{ op: 'remove', path: '/missing' }]), /patch operation 0 \(remove \/missing\) failed/],
    [
      'a failing test operation',
      () =>
        state.patch([
          { op: 'replace', path: '/count', value: 5 },
          { op: 'test', path: '/count', value: 6 }
        ]),
      /patch operation 1 \(test \/count\) failed: json patch: test failed at "\/count"/
    ],
    [
      'operations that are not RFC 6902',
      () => state.patch([{ op: 'merge', path: '/x' }] as never),
      /patch\(\) needs RFC 6902 operations; \/0\/op/
    ],
    [
      'a patch that reaches for __proto__',
      () => state.patch([{ op: 'add', path: '/__proto__/x', value: 1 }]),
      /patch operation 0 \(add \/__proto__\/x\) failed: json patch: forbidden segment "__proto__"/
    ],
    [
      // A lax applier would let this through as a no-op, committing a patch no subscriber can apply.
      'a member added under a number',
      () => state.patch([{ op: 'add', path: '/count/x', value: 1 }]),
      /patch operation 0 \(add \/count\/x\) failed: json patch: "\/count" holds no members/
    ],
    ['a patch that is not a list', () => state.patch({ op: 'add' } as never), /patch\(\) needs RFC 6902 operations/],
    ['undefined', () => state.set(undefined as never), /set\(\) needs a JSON value \(got undefined\)/],
    ['a function', () => state.set((() => 1) as never), /set\(\) needs a JSON value \(got function\)/]
  ]
  for (const [what, change, message] of refusals) {
    await t.rejects(change(), { code: 'FST_REALTIME_INVALID_STATE', message }, what)
  }
  t.same(await state.get(), { count: 1 }, 'the value is as it was')
  t.equal(state.version, 1)
  await state.patch([{ op: 'add', path: '/tags', value: ['ok'] }])
  const patch = await c.next('state_patch')
  t.equal(patch.data.version, 2, 'the first patch the subscriber sees is the good one')
})

t.test('state() checks its room and options, and needs an adapter that keeps documents', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  t.throws(() => app.realtime.state(''), { code: 'FST_REALTIME_INVALID_EVENT', message: /invalid room name/ })
  t.throws(() => app.realtime.state('r', { schema: { type: 'object' } as never }), {
    code: 'FST_REALTIME_INVALID_OPTION',
    message: 'fastify-realtime: state("r"): option "schema" must be a TypeBox schema'
  })
  for (const ttl of [0, 1.5, -1, 2 ** 31]) {
    t.throws(() => app.realtime.state('r', { ttl }), {
      code: 'FST_REALTIME_INVALID_OPTION',
      message: /option "ttl" must be a whole number of ms/
    })
  }
  const { documentRead: _r, documentCommit: _c, ...plain } = memoryAdapter()
  const other = await buildApp(t, { adapter: { ...plain, name: 'plain' } as Adapter })
  t.throws(() => other.realtime.state('r'), {
    code: 'FST_REALTIME_INVALID_OPTION',
    message: 'fastify-realtime: state("r"): the plain adapter does not keep state rooms (no documentRead/documentCommit)'
  })
  const c = await connect(other)
  const subscribed = await c.subscribe('user:alice')
  t.equal(subscribed.data.state, undefined, 'and its rooms subscribe as before')
})

t.test('changes through two handles of one room are each computed against the other, none lost', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const a = app.realtime.state('two')
  const b = app.realtime.state('two')
  const c = await connect(app)
  await c.subscribe('two')
  await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).patch([{ op: 'add', path: `/k${i}`, value: i }])))
  const value = (await a.get()) as Record<string, number>
  t.equal(Object.keys(value).length, 20, 'every key is there')
  const versions = (await c.collect('state_patch', 20)).map((f: Frame) => f.data.version)
  t.same(
    versions,
    Array.from({ length: 20 }, (_, i) => i + 1),
    'the subscriber sees versions 1 to 20 in order'
  )
})

t.test('a new handle patches the value the room holds, not an empty one: its first change reads it', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  await app.realtime.state('fresh').set({ nodes: { a: 'todo' } })
  const change = await app.realtime.state('fresh').patch([{ op: 'replace', path: '/nodes/a', value: 'done' }])
  t.same([change.version, await app.realtime.state('fresh').get()], [2, { nodes: { a: 'done' } }])
})

t.test('a state kept for ttl goes, and the next change starts a new epoch with the value whole', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state('brief', { ttl: 60 })
  const first = await state.set({ a: 1 })
  await new Promise((resolve) => setTimeout(resolve, 150))
  t.equal(await state.get(), undefined, 'gone after its ttl')
  const again = await state.set({ b: 2 })
  t.equal(again.version, 1)
  t.same(again.ops, [{ op: 'replace', path: '', value: { b: 2 } }])
  t.ok(first.event !== undefined && again.event !== undefined)
})

t.test(
  'an adapter that fails makes set() reject with FST_REALTIME_ADAPTER_FAILED; one that never lets a commit through gives up',
  async (t) => {
    const inner = memoryAdapter()
    let mode: 'ok' | 'fail' | 'lose' | 'fail-read' = 'ok'
    const adapter: Adapter = {
      ...inner,
      init: (h, log) => inner.init(h, log),
      documentRead: (room) =>
        mode === 'fail-read' ? Promise.reject(new Error('read down')) : (inner.documentRead?.(room) ?? Promise.resolve(undefined)),
      documentCommit: (room, commit, policy) => {
        if (mode === 'fail') return Promise.reject(new Error('commit down'))
        if (mode === 'lose') return Promise.resolve(undefined)
        return inner.documentCommit?.(room, commit, policy) ?? Promise.resolve(undefined)
      }
    }
    const app = await buildApp(t, { authorize: () => true, adapter })
    const state = app.realtime.state('flaky')
    await state.set({ a: 1 })
    mode = 'fail'
    await t.rejects(state.set({ a: 2 }), { code: 'FST_REALTIME_ADAPTER_FAILED', message: /the memory adapter failed: Error: commit down/ })
    mode = 'fail-read'
    await t.rejects(state.get(), { code: 'FST_REALTIME_ADAPTER_FAILED', message: /read down/ })
    mode = 'lose'
    await t.rejects(state.set({ a: 3 }), { code: 'FST_REALTIME_ADAPTER_FAILED', message: /100 changes in a row lost to other writers/ })
    mode = 'ok'
    t.same(await state.get(), { a: 1 }, 'nothing changed')
    t.equal((await state.set({ a: 4 })).version, 2, 'and the next change goes through')
  }
)

t.test('a value whose root changes kind is sent whole; an unchanged scalar sends nothing', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state('kinds')
  await state.set({ a: false })
  t.same((await state.set([0, false])).ops, [{ op: 'replace', path: '', value: [0, false] }], 'object to array')
  t.same((await state.set([1, false])).ops, [{ op: 'replace', path: '/0', value: 1 }], 'array to array, by index')
  t.same((await state.set(5)).ops, [{ op: 'replace', path: '', value: 5 }], 'array to number')
  t.same(await state.set(5), { version: 4, ops: [], event: undefined }, 'the same number')
  t.same((await state.set(null)).ops, [{ op: 'replace', path: '', value: null }], 'number to null')
  await t.rejects(state.patch([{ op: 'add', path: '/a', value: 1 }]), { code: 'FST_REALTIME_INVALID_STATE' }, 'a null value has no fields')
  t.equal(await state.get(), null)
})
