import t from 'tap'
import { until } from './helpers/client.js'
import { buildApp, connect, delay, logCapture } from './helpers/index.js'

const thought = (n: number) => ({ type: 'agent:thought' as const, data: { runId: 'run', content: `event ${n}` } })

/** A hook that holds every caller until `open()`; `entered` counts the callers held so far. */
function gate() {
  let open = () => {}
  const opened = new Promise<void>((resolve) => {
    open = resolve
  })
  const g = {
    entered: 0,
    open,
    async pass(): Promise<void> {
      g.entered++
      await opened
    }
  }
  return g
}

/** Lets what a released gate resumes run to its end (its continuations are microtasks and loop turns). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

async function emitRange(app: Awaited<ReturnType<typeof buildApp>>, room: string, from: number, to: number) {
  for (let n = from; n <= to; n++) await app.realtime.emit(room, thought(n))
}

t.test('resume inside the window replays exactly the missed events, in order, then continues live', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const first = await connect(app, 'alice')
  const { epoch } = (await first.subscribe('workflow:1')).data
  await emitRange(app, 'workflow:1', 1, 3)
  const seen = await first.collect('agent:thought', 3)
  t.same(
    seen.map((e) => e.seq),
    [1, 2, 3]
  )
  await first.close()
  await emitRange(app, 'workflow:1', 4, 6)

  const again = await connect(app, 'alice')
  const sub = await again.subscribe('workflow:1', { since: 3, epoch })
  t.same(sub.data, { seq: 3, epoch, recovered: true }, 'seq is where the stream continues from')
  await app.realtime.emit('workflow:1', thought(7))
  const after = await again.collect('agent:thought', 4)
  t.same(
    after.map((e) => [e.seq, e.data.content]),
    [
      [4, 'event 4'],
      [5, 'event 5'],
      [6, 'event 6'],
      [7, 'event 7']
    ]
  )
  await delay(20)
  t.equal(again.frames.length, 0, 'no duplicate')
})

t.test('a client that missed nothing is recovered with no replay', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const c = await connect(app)
  const { epoch } = (await c.subscribe('r')).data
  await emitRange(app, 'r', 1, 2)
  await c.collect('agent:thought', 2)
  const again = await c.subscribe('r', { since: 2, epoch })
  t.same(again.data, { seq: 2, epoch, recovered: true })
  await delay(20)
  t.equal(c.frames.length, 0)
})

t.test('resubscribing to a held room with an older since replays what was asked', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const c = await connect(app)
  const { epoch } = (await c.subscribe('r')).data
  await emitRange(app, 'r', 1, 3)
  await c.collect('agent:thought', 3)
  t.equal((await c.subscribe('r', { since: 1, epoch })).data.recovered, true)
  t.same(
    (await c.collect('agent:thought', 2)).map((e) => e.seq),
    [2, 3]
  )
  await app.realtime.emit('r', thought(4))
  t.equal((await c.next('agent:thought')).seq, 4, 'still subscribed once: one copy of live events')
  await delay(20)
  t.equal(c.frames.length, 0)
})

t.test('past the window, with another epoch, or from the future: recovered false with the current seq', async (t) => {
  const app = await buildApp(t, { authorize: () => true, history: { size: 5 } })
  const c = await connect(app)
  const { epoch } = (await c.subscribe('r')).data
  await emitRange(app, 'r', 1, 10)
  await c.collect('agent:thought', 10)
  const late = await connect(app, 'bob')
  t.same((await late.subscribe('r', { since: 2, epoch })).data, { seq: 10, epoch, recovered: false }, 'event 3 is no longer held')
  t.same((await late.subscribe('r', { since: 5, epoch })).data, { seq: 5, epoch, recovered: true }, 'events 6..10 are held')
  t.same(
    (await late.collect('agent:thought', 5)).map((e) => e.seq),
    [6, 7, 8, 9, 10]
  )
  t.same((await late.subscribe('r', { since: 9, epoch: 'another' })).data, { seq: 10, epoch, recovered: false })
  t.same((await late.subscribe('r', { since: 99, epoch })).data, { seq: 10, epoch, recovered: false })
  t.same((await late.subscribe('r', { since: 9 })).data, { seq: 10, epoch, recovered: false }, 'since without epoch cannot be trusted')
})

t.test('history expires after its ttl, and an empty room expires with a new epoch', async (t) => {
  const app = await buildApp(t, { authorize: () => true, history: { ttl: 100 } })
  const c = await connect(app)
  const { epoch } = (await c.subscribe('r')).data
  await emitRange(app, 'r', 1, 2)
  await c.collect('agent:thought', 2)
  await delay(150)
  t.same((await c.subscribe('r', { since: 0, epoch })).data, { seq: 2, epoch, recovered: false }, 'the events are too old')
  await c.call({ type: 'unsubscribe', room: 'r' })
  await delay(250)
  const fresh = await c.subscribe('r', { since: 2, epoch })
  t.equal(fresh.data.recovered, false)
  t.equal(fresh.data.seq, 0, 'the seq restarted')
  t.not(fresh.data.epoch, epoch, 'in a new epoch, so an old since is never misread')
})

t.test('history size 0 for a room: only a client that missed nothing is recovered', async (t) => {
  const app = await buildApp(t, {
    authorize: () => true,
    history: { rooms: (room) => (room.startsWith('typing:') ? { size: 0 } : undefined) }
  })
  const c = await connect(app)
  const { epoch } = (await c.subscribe('typing:1')).data
  await emitRange(app, 'typing:1', 1, 2)
  await c.collect('agent:thought', 2)
  t.equal((await c.subscribe('typing:1', { since: 1, epoch })).data.recovered, false)
  t.equal((await c.subscribe('typing:1', { since: 2, epoch })).data.recovered, true)
})

t.test('events emitted while authorize runs are replayed without gap or duplicate', async (t) => {
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const app = await buildApp(t, { authorize: async ({ user }) => (user.sub === 'slow' ? gate.then(() => true) : true) })
  const c = await connect(app, 'fast')
  const { epoch } = (await c.subscribe('r')).data
  await emitRange(app, 'r', 1, 3)
  const slow = await connect(app, 'slow')
  slow.send({ type: 'subscribe', id: 's', room: 'r', data: { since: 1, epoch } })
  await delay(10)
  await emitRange(app, 'r', 4, 6)
  release()
  await delay(5)
  await emitRange(app, 'r', 7, 8)
  const sub = await slow.next('subscribed')
  t.same(sub.data, { seq: 1, epoch, recovered: true })
  t.same(
    (await slow.collect('agent:thought', 7)).map((e) => e.seq),
    [2, 3, 4, 5, 6, 7, 8]
  )
  await delay(20)
  t.equal(slow.frames.length, 0)
})

t.test('a client that cannot be recovered gets the snapshot, then the events emitted while it was taken', async (t) => {
  let calls = 0
  const app = await buildApp(t, {
    authorize: () => true,
    snapshot: async ({ room, user, connection }) => {
      calls++
      const at = (await app.realtime.emit(room, thought(100 + calls))).seq
      await delay(10)
      await app.realtime.emit(room, thought(200 + calls))
      return { room, user: user.sub, conn: typeof connection.id, stateAt: at }
    }
  })
  await emitRange(app, 'r', 1, 2)
  const c = await connect(app, 'alice')
  const sub = await c.subscribe('r')
  t.same(sub.data.snapshot, { room: 'r', user: 'alice', conn: 'string', stateAt: 3 })
  t.equal(sub.data.recovered, false)
  t.equal(sub.data.seq, 2, 'the snapshot was started at seq 2')
  t.same(
    (await c.collect('agent:thought', 2)).map((e) => e.seq),
    [3, 4],
    'what happened during the snapshot follows it'
  )
  t.equal(calls, 1)
  const { epoch } = sub.data
  const resumed = await (await connect(app, 'alice')).subscribe('r', { since: 4, epoch })
  t.equal(resumed.data.snapshot, undefined, 'a recovered client gets no snapshot')
})

t.test('a snapshot that more events overtake than limits.bufferedBytes holds is taken again, at most three times', async (t) => {
  const logs = logCapture('warn')
  let calls = 0
  const app = await buildApp(
    t,
    {
      authorize: () => true,
      // About three events' worth: four events during a snapshot overflow it.
      limits: { bufferedBytes: 400 },
      snapshot: async ({ room }) => {
        calls++
        await emitRange(app, room, 1, 6)
        return { calls }
      }
    },
    { fastify: logs.fastify }
  )
  const c = await connect(app)
  const sub = await c.subscribe('r')
  t.equal(calls, 3)
  t.same(sub.data.snapshot, { calls: 3 })
  t.equal(sub.data.seq, 18, 'the fallback starts from the current seq')
  t.ok(logs.records().some((r) => /kept falling behind/.test(String(r.msg))))
  await app.realtime.emit('r', thought(19))
  t.equal((await c.next('agent:thought')).seq, 19, 'and continues live from there')
})

t.test('events during a snapshot that fit in limits.bufferedBytes follow it, with no gap', async (t) => {
  let calls = 0
  const app = await buildApp(t, {
    authorize: () => true,
    limits: { bufferedBytes: 4000 },
    snapshot: async ({ room }) => {
      calls++
      await emitRange(app, room, 1, 4)
      return { calls }
    }
  })
  const c = await connect(app)
  const sub = await c.subscribe('r')
  t.equal(calls, 1)
  t.same(sub.data, { seq: 0, epoch: sub.data.epoch, recovered: false, snapshot: { calls: 1 } })
  t.same(
    (await c.collect('agent:thought', 4)).map((e) => e.seq),
    [1, 2, 3, 4]
  )
})

t.test('a room does not expire under a subscribe that is still waiting for its snapshot', async (t) => {
  let calls = 0
  const app = await buildApp(t, {
    authorize: () => true,
    history: { ttl: 30 },
    snapshot: async () => {
      calls++
      await delay(120)
      return calls
    }
  })
  const c = await connect(app)
  const sub = await c.subscribe('r')
  t.equal(calls, 1)
  t.equal(sub.data.snapshot, 1)
  const { epoch } = await app.realtime.emit('r', thought(1))
  t.equal(epoch, sub.data.epoch, 'the seq run the client was given goes on')
})

t.test('a failing snapshot hook answers internal and subscribes nothing', async (t) => {
  const logs = logCapture('error')
  const app = await buildApp(
    t,
    {
      authorize: () => true,
      snapshot: () => {
        throw new Error('db down')
      }
    },
    { fastify: logs.fastify }
  )
  const c = await connect(app)
  const reply = await c.subscribe('r')
  t.same(reply.data, { code: 'internal', message: 'internal error' })
  t.equal(app.realtime.stats().subscriptions, 0)
  t.ok(logs.records().some((r) => r.msg === 'realtime snapshot hook failed'))
})

t.test('a connection that closes while authorize or the snapshot runs subscribes nothing', async (t) => {
  const gates = { 'slow-auth': gate(), 'slow-snap': gate() }
  const app = await buildApp(t, {
    authorize: async ({ room }) => {
      if (room === 'slow-auth') await gates[room].pass()
      return true
    },
    snapshot: async ({ room }) => {
      if (room === 'slow-snap') await gates[room].pass()
      return null
    }
  })
  for (const room of ['slow-auth', 'slow-snap'] as const) {
    const c = await connect(app)
    c.send({ type: 'subscribe', room })
    await until(() => gates[room].entered === 1, 10_000, `the subscribe to reach ${room}`)
    await c.close()
    await until(() => app.realtime.stats().connections === 0, 10_000, 'the server to drop the connection')
    gates[room].open()
    await settle()
    await delay(20)
    t.equal(app.realtime.stats().subscriptions, 0, room)
  }
})

t.test('a history.rooms function that throws answers the subscribe with internal and logs it', async (t) => {
  const logs = logCapture('error')
  const app = await buildApp(
    t,
    {
      authorize: () => true,
      history: {
        rooms: (room) => {
          if (room === 'explode') throw new Error('bad config')
          return undefined
        }
      }
    },
    { fastify: logs.fastify }
  )
  const c = await connect(app)
  t.same((await c.subscribe('explode')).data, { code: 'internal', message: 'internal error' })
  t.equal((await c.subscribe('fine')).type, 'subscribed', 'the connection stays')
  t.ok(logs.records().some((r) => r.msg === 'realtime subscribe failed' && r.room === 'explode'))
})

t.test('a room stays resumable for its ttl after its last subscriber drops, however quiet it was before', async (t) => {
  // Quiet for longer than the ttl before the drop; back well inside the ttl after it, even on a loaded machine.
  const app = await buildApp(t, { authorize: () => true, history: { ttl: 1500 } })
  const c = await connect(app)
  const { epoch } = (await c.subscribe('quiet')).data
  await delay(1600)
  await c.close()
  await delay(100)
  const again = await connect(app)
  t.same((await again.subscribe('quiet', { since: 0, epoch })).data, { seq: 0, epoch, recovered: true })
})

t.test('subscribes waiting for the snapshot count towards the room limit', async (t) => {
  const app = await buildApp(t, { authorize: () => true, limits: { roomsPerConnection: 2 }, snapshot: () => delay(30) })
  const c = await connect(app)
  for (const room of ['a', 'b', 'c', 'd']) c.send({ type: 'subscribe', id: room, room })
  const replies = await Promise.all(['a', 'b', 'c', 'd'].map(() => c.next()))
  t.equal(replies.filter((r) => r.type === 'subscribed').length, 2)
  t.equal(replies.filter((r) => r.data.code === 'too_many_rooms').length, 2)
  t.equal(app.realtime.stats().subscriptions, 2)
})

t.test('an unsubscribe cancels a subscribe still waiting for authorize or the snapshot', async (t) => {
  const gates = { 'slow-auth': gate(), 'slow-snap': gate() }
  const app = await buildApp(t, {
    authorize: async ({ room }) => {
      if (room === 'slow-auth') await gates[room].pass()
      return true
    },
    snapshot: async ({ room }) => {
      if (room === 'slow-snap') await gates[room].pass()
      return { room }
    }
  })
  const c = await connect(app)
  for (const room of ['slow-auth', 'slow-snap'] as const) {
    c.send({ type: 'subscribe', id: `s-${room}`, room })
    await until(() => gates[room].entered === 1, 10_000, `the subscribe to reach ${room}`)
    const reply = await c.call({ type: 'unsubscribe', room })
    t.equal(reply.type, 'unsubscribed', room)
  }
  gates['slow-auth'].open()
  gates['slow-snap'].open()
  await settle()
  await delay(50)
  t.same(
    c.frames.filter((f) => f.type === 'subscribed'),
    [],
    'no subscribed arrives after the unsubscribe'
  )
  t.same(
    c.frames.splice(0).map((f) => [f.type, f.id, f.room]),
    [
      ['unsubscribed', 's-slow-auth', 'slow-auth'],
      ['unsubscribed', 's-slow-snap', 'slow-snap']
    ],
    'each cancelled subscribe is answered with unsubscribed, under its own id'
  )
  await app.realtime.emit('slow-auth', { type: 'agent:thought', data: { runId: 'r', content: 'x' } })
  await delay(20)
  t.equal(app.realtime.stats().subscriptions, 0)
  t.equal(c.frames.length, 0)
})

t.test('subscribes waiting for authorize are bounded by the room limit, duplicates included', async (t) => {
  const app = await buildApp(t, { authorize: () => delay(50).then(() => true), limits: { roomsPerConnection: 3, burst: 100 } })
  const c = await connect(app)
  for (let i = 0; i < 10; i++) c.send({ type: 'subscribe', id: `s${i}`, room: 'same' })
  const replies = await Promise.all(Array.from({ length: 10 }, () => c.next()))
  t.equal(replies.filter((r) => r.type === 'error' && r.data.code === 'too_many_rooms').length, 7, 'only three may wait at once')
  t.equal(app.realtime.stats().subscriptions, 1)
})

t.test('resubscribes to a held room are bounded too, and a snapshot failing after a cancel answers unsubscribed', async (t) => {
  let snapshotStarted = false
  let failSnapshot = () => {}
  const failing = new Promise<void>((_resolve, reject) => {
    failSnapshot = () => reject(new Error('snapshot store down'))
  })
  const app = await buildApp(t, {
    authorize: () => delay(40).then(() => true),
    limits: { roomsPerConnection: 2, burst: 100 },
    snapshot: async ({ room }) => {
      if (room !== 'flaky') return null
      snapshotStarted = true
      // Fails only once the test has cancelled the subscribe, however slow the machine.
      await failing
      return null
    }
  })
  const c = await connect(app)
  t.equal((await c.subscribe('held')).type, 'subscribed')
  for (let i = 0; i < 5; i++) c.send({ type: 'subscribe', id: `again${i}`, room: 'held' })
  const replies = await Promise.all(Array.from({ length: 5 }, () => c.next()))
  t.equal(replies.filter((r) => r.type === 'error' && r.data.code === 'too_many_rooms').length, 3, 'two may wait, the rest are refused')
  c.send({ type: 'subscribe', id: 'flaky-1', room: 'flaky' })
  await until(() => snapshotStarted, 5000, 'the snapshot to start')
  await c.call({ type: 'unsubscribe', room: 'flaky' })
  failSnapshot()
  t.same(await c.next(), { type: 'unsubscribed', id: 'flaky-1', room: 'flaky' })
})
