// What the hub does when its adapter misbehaves: publications lost, repeated or out of epoch, calls that fail.
// A scripted adapter wraps the in-memory one; the clients are real sockets.
import { setTimeout as delay } from 'node:timers/promises'
import t from 'tap'
import type { Adapter, AdapterHandler, Publication } from '../src/adapters/adapter.js'
import { memoryAdapter } from '../src/adapters/memory.js'
import { sdk, until } from './helpers/client.js'
import { buildApp, connect, logCapture, sign } from './helpers/index.js'

interface Scripted extends Adapter {
  /** Publications to swallow before they reach the hub. */
  drop: number
  /** Makes the named method reject. */
  failing: Set<string>
  /** Delays history reads by this many ms. */
  slowHistory: number
  /** Holds every history read from now until `release()`; `waiting` counts the reads held. */
  holdHistory(): { readonly waiting: number; release(): void }
  /** Hands the hub a publication directly, as a broker would. */
  inject(pub: Publication): void
  hub(): AdapterHandler
}

function scripted(): Scripted {
  const inner = memoryAdapter()
  let hub: AdapterHandler | undefined
  let held: { gate: Promise<void>; hold: { waiting: number } } | undefined
  const failing = new Set<string>()
  const guard = async <T>(name: string, call: () => Promise<T>): Promise<T> => {
    if (failing.has(name)) throw new Error(`${name} is down`)
    return call()
  }
  const self: Scripted = {
    name: 'scripted',
    drop: 0,
    failing,
    slowHistory: 0,
    holdHistory: () => {
      let open = () => {}
      const gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const hold = {
        waiting: 0,
        release: () => {
          held = undefined
          open()
        }
      }
      held = { gate, hold }
      return hold
    },
    inject: (pub) => hub?.publication(pub),
    hub: () => hub as AdapterHandler,
    init: (h, log) => {
      hub = h
      return inner.init(
        {
          publication: (pub) => {
            if (self.drop > 0) self.drop--
            else h.publication(pub)
          },
          resync: () => h.resync()
        },
        log
      )
    },
    publish: (...a) => guard('publish', () => inner.publish(...a)),
    subscribe: (...a) => guard('subscribe', () => inner.subscribe(...a)),
    unsubscribe: (...a) => guard('unsubscribe', () => inner.unsubscribe(...a)),
    history: async (...a) => {
      if (self.slowHistory > 0) await delay(self.slowHistory)
      if (held !== undefined) {
        held.hold.waiting++
        await held.gate
      }
      return guard('history', () => inner.history(...a))
    },
    presenceAdd: (...a) => guard('presenceAdd', () => inner.presenceAdd(...a)),
    presenceRemove: (...a) => guard('presenceRemove', () => inner.presenceRemove(...a)),
    presenceRefresh: (...a) => guard('presenceRefresh', () => inner.presenceRefresh(...a)),
    presenceList: (...a) => guard('presenceList', () => inner.presenceList(...a)),
    stateRead: (...a) => guard('stateRead', () => inner.stateRead(...a)),
    stateWrite: (...a) => guard('stateWrite', () => inner.stateWrite(...a)),
    stateClaim: (...a) => guard('stateClaim', () => inner.stateClaim(...a)),
    stateTake: (...a) => guard('stateTake', () => inner.stateTake(...a)),
    close: () => inner.close?.() as Promise<void>
  }
  return self
}

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r', content } })

t.test('publications the hub never got are filled from the history, in order, and later ones wait for them', async (t) => {
  const adapter = scripted()
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
  await delay(30)
  t.equal(c.frames.length, 0, 'a publication repeated is written once')
  adapter.hub().resync()
  await delay(80)
  t.equal(c.frames.length, 0, 'a resync with nothing missed writes nothing')
  t.equal(c.closeCode, undefined)
})

t.test('a gap the history no longer covers closes the members with 4010; the client resumes and is told recovered: false', async (t) => {
  const logs = logCapture('warn')
  const adapter = scripted()
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
  const adapter = scripted()
  const app = await buildApp(t, { authorize: () => true, adapter }, { fastify: logs.fastify })
  const c = await connect(app)
  await c.subscribe('r')
  await app.realtime.emit('r', thought('1'))
  adapter.drop = 1
  adapter.failing.add('history')
  await app.realtime.emit('r', thought('2'))
  await app.realtime.emit('r', thought('3'))
  t.equal((await c.closed).code, 4010)
  t.ok(logs.records().some((r) => r.msg === 'realtime history read failed while filling a gap'))
})

t.test('an event of another epoch arriving while a subscribe waits closes that connection with 4010 once it is in', async (t) => {
  const adapter = scripted()
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
  const adapter = scripted()
  const app = await buildApp(
    t,
    { authorize: () => true, adapter, presence: true, heartbeat: { interval: 50, timeout: 1000 } },
    { fastify: logs.fastify }
  )
  adapter.failing.add('publish')
  await t.rejects(app.realtime.emit('r', thought('x')), {
    code: 'FST_REALTIME_ADAPTER_FAILED',
    statusCode: 503,
    message: /memory|scripted.*publish is down/
  })
  adapter.failing.clear()

  const c = await connect(app)
  adapter.failing.add('subscribe')
  t.same((await c.subscribe('r')).data, { code: 'internal', message: 'internal error' })
  t.ok(logs.records().some((r) => r.msg === 'realtime subscribe failed'))
  // A subscribe cancelled by an unsubscribe, then failing, is answered unsubscribed.
  adapter.failing.clear()
  adapter.failing.add('history')
  const hold = adapter.holdHistory()
  c.send({ type: 'subscribe', id: 's2', room: 'r' })
  await until(() => hold.waiting === 1, 5000, 'the subscribe to wait for the history')
  t.equal((await c.call({ type: 'unsubscribe', id: 'u2', room: 'r' })).type, 'unsubscribed')
  hold.release()
  t.equal((await c.nextWhere((f) => f.id === 's2', 'the answer to s2')).type, 'unsubscribed')
  adapter.failing.clear()

  for (const name of ['presenceAdd', 'presenceRefresh', 'presenceList', 'presenceRemove', 'unsubscribe']) adapter.failing.add(name)
  t.equal((await c.subscribe('r')).type, 'subscribed')
  t.same((await c.call({ type: 'presence', room: 'r' })).data, { code: 'internal', message: 'internal error' })
  await delay(120)
  await c.close()
  await delay(50)
  const messages = logs.records().map((r) => r.msg)
  for (const msg of [
    'realtime presence update failed',
    'realtime presence refresh failed',
    'realtime presence list failed',
    'realtime adapter unsubscribe failed'
  ]) {
    t.ok(messages.includes(msg), msg)
  }
})

t.test('an unsubscribe while the history is read is answered unsubscribed; volatile events during a join follow it', async (t) => {
  const adapter = scripted()
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
  const adapter = scripted()
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
  await delay(20)
  t.equal(staying.frames.length, 0, 'a publication of a room this instance does not hold goes nowhere')
})

t.test('presence announcements that fail to publish are logged', async (t) => {
  const logs = logCapture('warn')
  const adapter = scripted()
  const app = await buildApp(t, { authorize: () => true, adapter, presence: true }, { fastify: logs.fastify })
  const c = await connect(app)
  adapter.failing.add('publish')
  await c.subscribe('r')
  await delay(30)
  t.ok(logs.records().some((r) => r.msg === 'realtime presence announcement failed'))
})

t.test('a resync leaves alone a room still joining and a room whose gap is being filled', async (t) => {
  const adapter = scripted()
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
  await delay(30)
  t.equal(filling.frames.length, 0, 'nothing written twice')
  t.equal(filling.closeCode, undefined)
})
