// Server-side rooms: `subscriptions` at connect, joins remembered for the user, emit to several rooms or to a user.
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import WebSocket from 'ws'
import { memoryAdapter } from '../src/adapters/memory.js'
import { redisAdapter } from '../src/adapters/redis.js'
import type { Adapter } from '../src/index.js'
import { CONTROL_ROOM } from '../src/server/control.js'
import { sdk, until } from './helpers/client.js'
import { buildApp, connect, latch, logCapture, refused, sign, wsUrl } from './helpers/index.js'
import { requireRedis, startRedis } from './helpers/redis.js'
import { baseUrl, SseClient, streamUrl } from './helpers/sse.js'

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r', content } })

t.test('rooms from subscriptions are joined before ready, so an event sent once the client has ready arrives', async (t) => {
  const asked: string[] = []
  const app = await buildApp(t, {
    subscriptions: async (user, request) => {
      asked.push(`${user.sub} ${request.headers['x-tenant']}`)
      return [`user:${user.sub}`, `tenant:${request.headers['x-tenant']}`]
    }
  })
  const ws = new WebSocket(wsUrl(app), { headers: { authorization: `Bearer ${sign('alice')}`, 'x-tenant': 'acme' } })
  const frames: any[] = []
  const got = new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data))
      frames.push(frame)
      if (frame.type === 'ready') {
        void app.realtime.emit('tenant:acme', thought('for the tenant'))
        void app.realtime.emit({ user: 'alice' }, thought('for alice'))
      }
      if (frames.filter((f) => f.type === 'agent:thought').length === 2) resolve()
    })
  })
  await got
  ws.close()
  t.same(
    frames.map((f) => [f.type, f.room, f.id]),
    [
      ['ready', undefined, undefined],
      ['subscribed', 'user:alice', undefined],
      ['subscribed', 'tenant:acme', undefined],
      ['agent:thought', 'tenant:acme', undefined],
      ['agent:thought', 'user:alice', undefined]
    ],
    'ready first, then the rooms, then the events'
  )
  t.same(asked, ['alice acme'], 'asked once per connect, with the user and the request')
})

t.test('subscriptions that throw or give a bad room refuse the upgrade with 500 and a log line', async (t) => {
  const logs = logCapture('error')
  const app = await buildApp(
    t,
    {
      subscriptions: (user) => {
        if (user.sub === 'boom') throw new Error('tenant lookup failed')
        return user.sub === 'bad' ? ['ok', 'no{braces}allowed'] : ('user:x' as never)
      }
    },
    { fastify: logs.fastify }
  )
  for (const sub of ['boom', 'bad', 'string']) {
    const res = await refused(app, sub)
    t.equal(res.status, 500, sub)
    t.equal(res.body.code, 'FST_REALTIME_SUBSCRIPTIONS_FAILED')
  }
  const msgs = logs.records().map((r) => r.msg)
  t.ok(msgs.includes('realtime subscriptions failed'))
  t.equal(msgs.filter((m) => m === 'realtime subscriptions must return an array of valid room names').length, 2)
})

t.test('a join is remembered for the user: the next connection starts in the room; leave forgets it', async (t) => {
  const app = await buildApp(t)
  const first = await connect(app, 'bob')
  t.equal(await app.realtime.join(first.ready.data.connectionId, 'project:7'), 1)
  t.equal((await first.next('subscribed')).room, 'project:7')
  await first.close()

  const second = await connect(app, 'bob')
  t.equal((await second.next('subscribed')).room, 'project:7', 'restored at connect')
  await app.realtime.emit('project:7', thought('build passed'))
  t.equal((await second.next('agent:thought')).data.content, 'build passed')
  t.equal(await app.realtime.leave({ user: 'bob' }, 'project:7'), 1)
  t.equal((await second.next('unsubscribed')).room, 'project:7')
  await second.close()

  const third = await connect(app, 'bob')
  await app.realtime.join(third.ready.data.connectionId, 'marker', { remember: false })
  await third.next('subscribed')
  await app.realtime.emit('project:7', thought('not for bob'))
  await app.realtime.emit('marker', thought('marker'))
  t.equal((await third.next('agent:thought')).data.content, 'marker', 'the forgotten room was not joined')
  await third.close()

  const fourth = await connect(app, 'bob')
  await app.realtime.emit({ user: 'bob' }, thought('nothing joined'))
  await app.realtime.join(fourth.ready.data.connectionId, 'marker2', { remember: false })
  t.equal((await fourth.next('subscribed')).room, 'marker2', 'a join with remember: false was not restored')
})

t.test('join({ user }) reaches every connection of the user, and a bad room or option throws', async (t) => {
  const app = await buildApp(t)
  const a = await connect(app, 'carl')
  const b = await connect(app, 'carl')
  t.equal(await app.realtime.join({ user: 'carl' }, 'team:1'), 2)
  for (const c of [a, b]) t.equal((await c.next('subscribed')).room, 'team:1')
  t.equal(await app.realtime.join({ user: 'nobody' }, 'team:1'), 0, 'a user with no connection is remembered for later')
  await t.rejects(app.realtime.join({ user: 'carl' }, 'bad{room}'), { code: 'FST_REALTIME_INVALID_EVENT' })
  await t.rejects(app.realtime.leave({ user: 'carl' }, 'bad{room}'), { code: 'FST_REALTIME_INVALID_EVENT' })
  await t.rejects(app.realtime.join({ user: 'carl' }, 'team:2', { remember: 'yes' as never }), {
    code: 'FST_REALTIME_INVALID_OPTION',
    message: 'fastify-realtime: join() option "remember" must be a boolean (got string)'
  })
  t.equal(await app.realtime.leave('no-such-connection', 'team:1'), 0)
})

t.test('emit to several rooms sends each its own event; a bad room in the list sends nothing', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = await connect(app, 'dan')
  for (const room of ['a', 'b', 'c']) await client.subscribe(room)
  const results = await app.realtime.emit(['a', 'b', 'a'], thought('twice'))
  t.same(
    results.map((r) => [r.room, r.seq]),
    [
      ['a', 1],
      ['b', 1]
    ],
    'a room listed twice gets the event once'
  )
  const got = await client.collect('agent:thought', 2)
  t.same(got.map((f) => f.room).sort(), ['a', 'b'])
  t.throws(() => app.realtime.emit(['a', 'no{braces}'], thought('x')), { code: 'FST_REALTIME_INVALID_EVENT' })
  t.throws(() => app.realtime.emit(['a'], { type: 'nope', data: {} } as never), { code: 'FST_REALTIME_INVALID_EVENT' })
  t.throws(() => app.realtime.emit({ user: '' }, thought('x')), {
    message: 'fastify-realtime: emit() takes a room, an array of rooms or { user: <id> }'
  })
  t.throws(() => app.realtime.emit(42 as never, thought('x')), { code: 'FST_REALTIME_INVALID_EVENT' })
  t.same(await app.realtime.emit([], thought('none')), [])
  await app.realtime.emit('c', thought('marker'))
  const next = await client.next('agent:thought')
  t.same([next.room, next.data.content], ['c', 'marker'], 'nothing of the refused emits was sent')
})

t.test('a connection whose remembered rooms cannot be read is closed with 1011 and can come back', async (t) => {
  const logs = logCapture('error')
  const inner = memoryAdapter()
  let failing = true
  const adapter: Adapter = {
    ...inner,
    stateRead: (room) => (failing && room.includes('realtime:user:') ? Promise.reject(new Error('store down')) : inner.stateRead(room))
  }
  const app = await buildApp(t, { adapter }, { fastify: logs.fastify })
  const ws = new WebSocket(wsUrl(app), { headers: { authorization: `Bearer ${sign('eve')}` } })
  const frames: string[] = []
  ws.on('message', (d) => frames.push(JSON.parse(String(d)).type))
  const [code] = await new Promise<[number]>((resolve) => ws.on('close', (c) => resolve([c])))
  t.equal(code, 1011)
  t.same(frames, [], 'no ready was sent')
  t.ok(logs.records().some((r) => r.msg === 'realtime rooms of the connection could not be joined'))
  failing = false
  const again = await connect(app, 'eve')
  t.equal(again.ready.type, 'ready')
  await t.rejects(
    (async () => {
      failing = true
      const stateWrite = adapter.stateWrite
      adapter.stateWrite = () => Promise.reject(new Error('store down'))
      try {
        await app.realtime.join({ user: 'eve' }, 'x')
      } finally {
        adapter.stateWrite = stateWrite
      }
    })(),
    { code: 'FST_REALTIME_ADAPTER_FAILED' }
  )
})

t.test('an SSE stream whose remembered rooms cannot be read ends with a close event 1011, before ready', async (t) => {
  const logs = logCapture('error')
  const inner = memoryAdapter()
  const adapter: Adapter = {
    ...inner,
    stateRead: (room) => (room.includes('realtime:user:') ? Promise.reject(new Error('store down')) : inner.stateRead(room))
  }
  const app = await buildApp(t, { adapter }, { fastify: { ...logs.fastify, forceCloseConnections: true } })
  const response = await fetch(streamUrl(baseUrl(app)), { headers: { authorization: `Bearer ${sign('eve')}` } })
  t.equal(response.status, 200)
  const stream = new SseClient(response, baseUrl(app), sign('eve'))
  await stream.pump()
  t.same(stream.closeEvent, { code: 1011, reason: 'rooms could not be joined' })
  t.same(stream.frames, [], 'no ready was sent')
  t.ok(logs.records().some((r) => r.msg === 'realtime rooms of the connection could not be joined'))
})

t.test('a connection that leaves while its remembered rooms are read is never started', async (t) => {
  const logs = logCapture('info')
  const inner = memoryAdapter()
  const held = latch()
  const read = latch()
  const adapter: Adapter = {
    ...inner,
    stateRead: async (room) => {
      if (room.includes('realtime:user:') && room.includes('gone')) {
        read.open()
        await held.done
      }
      return inner.stateRead(room)
    }
  }
  const app = await buildApp(t, { adapter }, { fastify: logs.fastify })
  const ws = new WebSocket(wsUrl(app), { headers: { authorization: `Bearer ${sign('gone')}` } })
  ws.on('error', () => {})
  await read.done
  ws.terminate()
  const closedLog = () => logs.records().some((r) => r.msg === 'realtime connection closed' && r.userId === 'gone')
  await until(closedLog, 3000, 'the server to see the connection close')
  held.open()
  // A later connection, once it is ready, shows the first one's rooms were read by then.
  const marker = await connect(app, 'marker')
  t.equal(marker.ready.type, 'ready')
  t.notOk(
    logs.records().some((r) => r.msg === 'realtime connection opened' && r.userId === 'gone'),
    'the connection that left was not started'
  )
  t.equal(app.realtime.stats().connections, 1)
})

t.test('a join signal that cannot be sent rejects; one from another instance that cannot be joined is logged', async (t) => {
  const logs = logCapture('warn')
  const inner = memoryAdapter()
  let handler: Parameters<Adapter['init']>[0] | undefined
  const adapter: Adapter = {
    ...inner,
    init: (h, log) => {
      handler = h
      return inner.init(h, log)
    },
    publish: (room, out, policy) =>
      room === CONTROL_ROOM && failSignals ? Promise.reject(new Error('bus down')) : inner.publish(room, out, policy),
    subscribe: (room, policy) => (room === 'locked' ? Promise.reject(new Error('no such room')) : inner.subscribe(room, policy))
  }
  let failSignals = true
  const app = await buildApp(t, { adapter }, { fastify: logs.fastify })
  await t.rejects(app.realtime.join({ user: 'gus' }, 'room:1'), { code: 'FST_REALTIME_ADAPTER_FAILED' })
  failSignals = false
  const client = await connect(app, 'gus')
  const signal = { kind: 'member', user: 'gus', room: 'locked', joined: true, from: 'another-instance' }
  handler?.publication({ room: CONTROL_ROOM, seq: 0, epoch: '', frame: Buffer.from(JSON.stringify(signal)) } as never)
  await until(() => logs.records().some((r) => r.msg === 'realtime join from another instance failed'), 5000, 'the log line')
  await client.close()
})

t.test('with Redis, a server-joined room survives an SDK reconnect to another instance', { skip: requireRedis(t) }, async (t) => {
  const redis = await startRedis(t)
  const apps: FastifyInstance[] = []
  for (let i = 0; i < 2; i++) apps.push(await buildApp(t, { adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) }))
  const [one, two] = apps as [FastifyInstance, FastifyInstance]
  // The first connection goes to instance one, every later one to instance two.
  let opened = 0
  class ToTwo extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(opened++ === 0 ? url : url.replace(wsUrl(one), wsUrl(two)), protocols)
    }
  }
  const events: string[] = []
  const client = sdk(t, one, { WebSocket: ToTwo as never, token: () => sign('fred') })
  client.on('agent:thought', (e) => events.push(e.data.content))
  await until(() => client.state === 'open', 5000, 'the first connection')
  await until(() => one.realtime.stats().connections === 1, 5000, 'instance one holds it')
  t.equal(await one.realtime.join({ user: 'fred' }, 'project:42'), 1)
  await one.realtime.emit('project:42', thought('before'))
  await until(() => events.includes('before'), 5000, 'the event before the reconnect')

  for (const conn of [...one.websocketServer.clients]) conn.terminate()
  await until(() => two.realtime.stats().connections === 1, 5000, 'the reconnect to instance two')
  await until(() => client.state === 'open', 5000, 'open again')
  await two.realtime.emit('project:42', thought('after'))
  await until(() => events.includes('after'), 5000, 'the event after the reconnect')

  // A join made on instance one reaches the user's connection on instance two.
  t.equal(await one.realtime.join({ user: 'fred' }, 'project:43'), 0, 'no connection of fred on instance one')
  await until(() => two.realtime.stats().subscriptions === 2, 5000, 'the join reached instance two')
  await one.realtime.emit('project:43', thought('across'))
  await until(() => events.includes('across'), 5000, 'the event of a room joined from the other instance')
  await one.realtime.leave({ user: 'fred' }, 'project:43')
  await until(() => two.realtime.stats().subscriptions === 1, 5000, 'the leave reached instance two')
  t.same(events, ['before', 'after', 'across'])
})
