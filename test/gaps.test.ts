// What the hub does when its adapter misbehaves: publications lost, repeated or out of epoch, calls that fail.
// The faulty adapter (test/helpers/faulty-adapter.ts) wraps the in-memory one; the clients are real sockets.
import t from 'tap'
import { sdk, until } from './helpers/client.js'
import { faultyAdapter } from './helpers/faulty-adapter.js'
import { buildApp, connect, logCapture, sign } from './helpers/index.js'

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r', content } })

t.test('publications the hub never got are filled from the history, in order, and later ones wait for them', async (t) => {
  const adapter = faultyAdapter()
  const app = await buildApp(t, { authorize: () => true, adapter })
  const c = await connect(app)
  await c.subscribe('r')
  await app.realtime.emit('r', thought('1'))
  adapter.drop = 2
  adapter.slowHistory = 50
  await app.realtime.emit('r', thought('2'))
  await app.realtime.emit('r', thought('3'))
  await app.realtime.emit('r', thought('4'))
  await app.realtime.emit('r', thought('5'))
  const got = await c.collect('agent:thought', 5)
  t.same(
    got.map((e) => e.seq),
    [1, 2, 3, 4, 5]
  )
  const last = await app.realtime.emit('r', thought('6'))
  const { epoch } = last
  adapter.inject({ room: 'r', seq: 6, epoch, frame: Buffer.from('{"type":"agent:thought","room":"r","seq":6,"data":{},"ts":"x"}') })
  t.equal((await c.next('agent:thought')).seq, 6)
  await app.realtime.emit('r', thought('7'))
  t.equal((await c.next()).seq, 7, 'a publication repeated is written once: the next frame is the next event')
  adapter.hub().resync()
  await app.realtime.emit('r', thought('8'))
  t.equal((await c.next()).seq, 8, 'a resync with nothing missed writes nothing before the next event')
  t.equal(c.frames.length, 0)
  t.equal(c.closeCode, undefined)
})

t.test('a gap the history no longer covers closes the members with 4010; the client resumes and is told recovered: false', async (t) => {
  const logs = logCapture('warn')
  const adapter = faultyAdapter()
  const app = await buildApp(t, { authorize: () => true, adapter, history: { size: 2 } }, { fastify: logs.fastify })
  const seen: Array<number | string> = []
  const client = sdk(t, app, { token: sign('ann') })
  client.subscribe('r', (e) => seen.push(e.seq as number), { onSubscribed: (info) => seen.push(`subscribed ${info.recovered}`) })
  await until(() => seen.length === 1)
  await app.realtime.emit('r', thought('1'))
  adapter.drop = 3
  for (const n of ['2', '3', '4', '5']) await app.realtime.emit('r', thought(n))
  await until(() => seen.length >= 3, 3000, 'the resubscribe')
  t.same(seen, [`subscribed false`, 1, `subscribed false`], 'told, not silently skipped')
  t.ok(logs.records().some((r) => r.msg === 'realtime missed events the history no longer holds'))
})

t.test('a gap whose history read fails is handled as a gap the history cannot cover', async (t) => {
  const logs = logCapture('warn')
  const adapter = faultyAdapter()
  const app = await buildApp(t, { authorize: () => true, adapter }, { fastify: logs.fastify })
  const c = await connect(app)
  await c.subscribe('r')
  await app.realtime.emit('r', thought('1'))
  adapter.drop = 1
  adapter.fail('history')
  await app.realtime.emit('r', thought('2'))
  await app.realtime.emit('r', thought('3'))
  t.equal((await c.closed).code, 4010)
  t.ok(logs.records().some((r) => r.msg === 'realtime history read failed while filling a gap'))
})

t.test('an event of another epoch arriving while a subscribe waits closes that connection with 4010 once it is in', async (t) => {
  const adapter = faultyAdapter()
  const app = await buildApp(t, {
    authorize: () => true,
    adapter,
    snapshot: async () => {
      adapter.inject({ room: 'r', seq: 1, epoch: 'another-run', frame: Buffer.from('{}') })
      return 'snap'
    }
  })
  const c = await connect(app)
  const sub = await c.subscribe('r')
  t.equal(sub.data.snapshot, 'snap')
  t.equal((await c.closed).code, 4010)
})

t.test('adapter failures: emit rejects with FST_REALTIME_ADAPTER_FAILED, subscribe answers internal, background calls log', async (t) => {
  const logs = logCapture('warn')
  const adapter = faultyAdapter()
  const app = await buildApp(
    t,
    { authorize: () => true, adapter, presence: true, heartbeat: { interval: 50, timeout: 1000 } },
    { fastify: logs.fastify }
  )
  adapter.fail('publish')
  await t.rejects(app.realtime.emit('r', thought('x')), {
    code: 'FST_REALTIME_ADAPTER_FAILED',
    statusCode: 503,
    message: 'fastify-realtime: the faulty adapter failed: Error: publish is down'
  })
  adapter.heal()

  const c = await connect(app)
  adapter.fail('subscribe')
  t.same((await c.subscribe('r')).data, { code: 'internal', message: 'internal error' })
  t.ok(logs.records().some((r) => r.msg === 'realtime subscribe failed'))
  // A subscribe cancelled by an unsubscribe, then failing, is answered unsubscribed.
  adapter.heal()
  adapter.fail('history')
  const hold = adapter.holdHistory()
  c.send({ type: 'subscribe', id: 's2', room: 'r' })
  await until(() => hold.waiting === 1, 5000, 'the subscribe to wait for the history')
  t.equal((await c.call({ type: 'unsubscribe', id: 'u2', room: 'r' })).type, 'unsubscribed')
  hold.release()
  t.equal((await c.nextWhere((f) => f.id === 's2', 'the answer to s2')).type, 'unsubscribed')
  adapter.heal()

  for (const call of ['presenceAdd', 'presenceRefresh', 'presenceList', 'presenceRemove', 'unsubscribe'] as const) adapter.fail(call)
  t.equal((await c.subscribe('r')).type, 'subscribed')
  t.same((await c.call({ type: 'presence', room: 'r' })).data, { code: 'internal', message: 'internal error' })
  const logged = (msg: string) => until(() => logs.records().some((r) => r.msg === msg), 5000, msg)
  // The refresh runs on the heartbeat (every 50 ms); the update and the unsubscribe when the connection goes.
  await logged('realtime presence refresh failed')
  t.pass('realtime presence refresh failed')
  await c.close()
  for (const msg of ['realtime presence update failed', 'realtime presence list failed', 'realtime adapter unsubscribe failed']) {
    await logged(msg)
    t.pass(msg)
  }
})

t.test('an unsubscribe while the history is read is answered unsubscribed; volatile events during a join follow it', async (t) => {
  const adapter = faultyAdapter()
  const app = await buildApp(t, {
    authorize: () => true,
    adapter,
    snapshot: async ({ room }) => {
      await app.realtime.emit(room, { type: 'task_update', data: { taskId: 't', status: 'running', progress: 1 } }, { volatile: true })
      return null
    }
  })
  const c = await connect(app)
  const hold = adapter.holdHistory()
  c.send({ type: 'subscribe', id: 's1', room: 'r' })
  await until(() => hold.waiting === 1, 5000, 'the subscribe to wait for the history')
  t.equal((await c.call({ type: 'unsubscribe', id: 'u1', room: 'r' })).type, 'unsubscribed')
  hold.release()
  t.equal((await c.nextWhere((f) => f.id === 's1', 'the answer to s1')).type, 'unsubscribed')
  await c.subscribe('r')
  t.equal((await c.next('task_update')).seq, undefined, 'the volatile event emitted during the snapshot')
})

t.test('app.realtime.join() skips a connection that closed while the room was joined; rooms not held are ignored', async (t) => {
  const adapter = faultyAdapter()
  const app = await buildApp(t, { adapter })
  const leaving = await connect(app, 'ann')
  const staying = await connect(app, 'ann')
  const hold = adapter.holdHistory()
  const joining = app.realtime.join({ user: 'ann' }, 'team:1')
  await until(() => hold.waiting === 1, 5000, 'the join to wait for the history')
  await leaving.close()
  await until(() => app.realtime.stats().connections === 1, 5000, 'the server to see the close')
  hold.release()
  t.equal(await joining, 1, 'only the connection still open joined')
  t.equal((await staying.next('subscribed')).room, 'team:1')
  adapter.inject({ room: 'not-held-here', seq: 1, epoch: 'e', frame: Buffer.from('{}') })
  await app.realtime.emit('team:1', thought('after'))
  t.equal((await staying.next()).type, 'agent:thought', 'a publication of a room this instance does not hold goes nowhere')
  t.equal(staying.frames.length, 0)
})

t.test('presence announcements that fail to publish are logged', async (t) => {
  const logs = logCapture('warn')
  const adapter = faultyAdapter()
  const app = await buildApp(t, { authorize: () => true, adapter, presence: true }, { fastify: logs.fastify })
  const c = await connect(app)
  adapter.fail('publish')
  await c.subscribe('r')
  await until(() => logs.records().some((r) => r.msg === 'realtime presence announcement failed'), 5000, 'the failure logged')
  t.pass('the failed announcement is logged')
})

t.test('a resync leaves alone a room still joining and a room whose gap is being filled', async (t) => {
  const adapter = faultyAdapter()
  const app = await buildApp(t, { authorize: () => true, adapter })
  const filling = await connect(app)
  await filling.subscribe('r')
  await app.realtime.emit('r', thought('1'))
  const joining = await connect(app)
  const hold = adapter.holdHistory()
  adapter.drop = 1
  await app.realtime.emit('r', thought('2'))
  await app.realtime.emit('r', thought('3'))
  // 'r' waits for its history read; 'j' waits for its first read, so it has no position yet.
  joining.send({ type: 'subscribe', id: 'j1', room: 'j' })
  await until(() => hold.waiting === 2, 5000, 'both history reads to wait')
  adapter.hub().resync()
  hold.release()
  t.same(
    (await filling.collect('agent:thought', 3)).map((e) => e.seq),
    [1, 2, 3],
    'the fill in progress completes once, in order'
  )
  t.equal((await joining.nextWhere((f) => f.id === 'j1', 'the answer to j1')).type, 'subscribed')
  await app.realtime.emit('j', thought('a'))
  t.equal((await joining.next('agent:thought')).seq, 1)
  await app.realtime.emit('r', thought('4'))
  t.equal((await filling.next()).seq, 4, 'nothing written twice: the next frame is the next event')
  t.equal(filling.frames.length, 0)
  t.equal(filling.closeCode, undefined)
})
