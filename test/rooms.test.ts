import t from 'tap'
import { buildApp, connect, delay, logCapture } from './helpers/index.js'

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'run-1', content } })

t.test('without authorize a client may subscribe only to its own user room', async (t) => {
  const logs = logCapture('info')
  const app = await buildApp(t, {}, { fastify: logs.fastify })
  const alice = await connect(app, 'alice')
  const own = await alice.subscribe('user:alice')
  t.same(own.room, 'user:alice')
  t.equal(own.type, 'subscribed')
  t.same(own.data, { seq: 0, epoch: own.data.epoch, recovered: false })
  t.match(own.data.epoch, /^[\w-]{8}$/)

  const denied = await alice.subscribe('user:bob')
  t.same(denied.type, 'error')
  t.same(denied.room, 'user:bob')
  t.same(denied.data, { code: 'forbidden', message: 'not allowed to subscribe to "user:bob"' })
  t.equal((await alice.subscribe('workflow:1')).data.code, 'forbidden', 'deny is the default')

  await app.realtime.emit('user:bob', thought('for bob only'))
  await app.realtime.emit('user:alice', thought('for alice'))
  const got = await alice.next('agent:thought')
  t.equal(got.data.content, 'for alice', 'nothing of a denied room is delivered')
  t.ok(logs.records().some((r) => r.msg === 'realtime subscription denied' && r.room === 'user:bob' && r.userId === 'alice'))
})

t.test('authorize decides every subscription, async, with the user, room and connection', async (t) => {
  const seen: Array<{ sub: string; room: string; action: string; conn: string }> = []
  const app = await buildApp(t, {
    authorize: async ({ user, room, connection, action }) => {
      seen.push({ sub: user.sub, room, action, conn: connection.id })
      await delay(5)
      if (room === 'boom') throw new Error('database down')
      return room.startsWith('workflow:')
    }
  })
  const client = await connect(app, 'alice')
  const ready = client.ready
  t.equal((await client.subscribe('workflow:7')).type, 'subscribed')
  t.equal((await client.subscribe('billing')).data.code, 'forbidden')
  t.equal((await client.subscribe('boom')).data.code, 'forbidden', 'a throwing authorize denies')
  t.same(seen[0], { sub: 'alice', room: 'workflow:7', action: 'subscribe', conn: ready.data.connectionId })
})

t.test('events carry type, room, seq +1 per room, data and an ISO 8601 ts', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = await connect(app)
  await client.subscribe('a')
  await client.subscribe('b')
  const r1 = await app.realtime.emit('a', thought('one'))
  await app.realtime.emit('b', { type: 'task_update', data: { taskId: 't', status: 'running', progress: 50 } })
  const r2 = await app.realtime.emit('a', thought('two'))
  t.same(r1, { room: 'a', seq: 1, epoch: r1.epoch })
  t.equal(r2.seq, 2)
  const events = [await client.next(), await client.next(), await client.next()]
  t.same(
    events.map((e) => [e.type, e.room, e.seq]),
    [
      ['agent:thought', 'a', 1],
      ['task_update', 'b', 1],
      ['agent:thought', 'a', 2]
    ]
  )
  const first = events[0] as { ts: string; data: unknown }
  t.same(Object.keys(events[0] as object), ['type', 'room', 'seq', 'data', 'ts'])
  t.same(first.data, { runId: 'run-1', content: 'one' })
  t.equal(new Date(first.ts).toISOString(), first.ts)
})

t.test('emit refuses an unknown type, invalid data and a bad room before sending anything', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = await connect(app)
  await client.subscribe('r')
  const emit = app.realtime.emit as (room: string, event: unknown) => Promise<unknown>
  t.throws(() => emit('r', { type: 'nope', data: {} }), {
    code: 'FST_REALTIME_INVALID_EVENT',
    message: 'fastify-realtime: unknown event type "nope": add it to the events registry'
  })
  t.throws(() => emit('r', { type: 'task_update', data: { taskId: 't', status: 'running', progress: 101 } }), {
    code: 'FST_REALTIME_INVALID_EVENT',
    message: /event "task_update" has invalid data at \/progress: Expected integer to be less or equal to 100/
  })
  t.throws(() => emit('r', null), { message: /must be an object/ })
  t.throws(() => emit('r', 'agent:thought'), { message: /must be an object/ })
  t.throws(() => emit('r', { type: 5, data: {} }), { message: /unknown event type "5"/ })
  t.throws(() => emit('', thought('x')), { message: /invalid room name ""/ })
  t.throws(() => emit('a b', thought('x')), { message: /invalid room name "a b"/ })
  t.throws(() => emit('x'.repeat(256), thought('x')), { message: /invalid room name/ })
  await app.realtime.emit('r', thought('valid'))
  const next = await client.next()
  t.equal(next.data.content, 'valid', 'nothing was sent for the refused emits')
  t.equal(next.seq, 1, 'and no seq was used')
})

t.test('validate: false skips the data check but still refuses unknown types', async (t) => {
  const app = await buildApp(t, { authorize: () => true, validate: false })
  const client = await connect(app)
  await client.subscribe('r')
  const emit = app.realtime.emit as (room: string, event: unknown) => Promise<unknown>
  await emit('r', { type: 'task_update', data: { anything: true } })
  t.same((await client.next('task_update')).data, { anything: true })
  t.throws(() => emit('r', { type: 'nope', data: {} }), { code: 'FST_REALTIME_INVALID_EVENT' })
})

t.test('a custom registry replaces the preset', async (t) => {
  const { defineEvents, Type } = await import('../src/index.js')
  const events = defineEvents({ 'invoice:paid': Type.Object({ invoiceId: Type.String() }) })
  const app = await buildApp(t, { events, authorize: () => true })
  const client = await connect(app)
  await client.subscribe('billing')
  const emit = app.realtime.emit as (room: string, event: unknown) => Promise<unknown>
  await emit('billing', { type: 'invoice:paid', data: { invoiceId: 'in_1' } })
  t.same((await client.next('invoice:paid')).data, { invoiceId: 'in_1' })
  t.throws(() => emit('billing', thought('x')), { message: /unknown event type "agent:thought"/ })
})

t.test('unsubscribe stops delivery; unsubscribing twice is harmless', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = await connect(app)
  await client.subscribe('r')
  const reply = await client.call({ type: 'unsubscribe', room: 'r' })
  t.same({ type: reply.type, room: reply.room }, { type: 'unsubscribed', room: 'r' })
  t.equal((await client.call({ type: 'unsubscribe', room: 'r' })).type, 'unsubscribed')
  await app.realtime.emit('r', thought('after'))
  await client.subscribe('other')
  await app.realtime.emit('other', thought('marker'))
  t.equal((await client.next('agent:thought')).data.content, 'marker')
  t.equal(app.realtime.stats().subscriptions, 1)
})

t.test('a connection may hold limits.roomsPerConnection rooms', async (t) => {
  const app = await buildApp(t, { authorize: () => true, limits: { roomsPerConnection: 3 } })
  const client = await connect(app)
  for (const room of ['a', 'b', 'c']) t.equal((await client.subscribe(room)).type, 'subscribed')
  const over = await client.subscribe('d')
  t.same(over.data, { code: 'too_many_rooms', message: 'a connection may hold at most 3 rooms' })
  t.equal((await client.subscribe('a')).type, 'subscribed', 'subscribing again to a held room is fine')
  await client.call({ type: 'unsubscribe', room: 'b' })
  t.equal((await client.subscribe('d')).type, 'subscribed')
})

t.test('concurrent subscribes cannot pass the room limit while authorize is pending', async (t) => {
  const app = await buildApp(t, { authorize: () => delay(20).then(() => true), limits: { roomsPerConnection: 2 } })
  const client = await connect(app)
  for (const room of ['a', 'b', 'c', 'd']) client.send({ type: 'subscribe', id: room, room })
  const replies = await Promise.all(['a', 'b', 'c', 'd'].map(() => client.next(undefined)))
  const ok = replies.filter((r) => r.type === 'subscribed')
  t.equal(ok.length, 2)
  t.equal(replies.filter((r) => r.type === 'error' && r.data.code === 'too_many_rooms').length, 2)
})

t.test('room names are checked for length and pattern', async (t) => {
  const app = await buildApp(t, { authorize: () => true, limits: { roomNameMaxLength: 10, roomPattern: /^[a-z:]+$/ } })
  const client = await connect(app)
  for (const room of ['x'.repeat(11), 'UPPER', 'with space', '']) {
    const reply = await client.call({ type: 'subscribe', room })
    t.equal(reply.data.code, room === '' ? 'invalid_message' : 'invalid_room', JSON.stringify(room))
  }
  const missing = await client.call({ type: 'subscribe' })
  t.equal(missing.data.code, 'invalid_room')
  t.match(missing.data.message, /"subscribe" needs a room: 1 to 10 characters/)
})

t.test('join and leave from the server need no authorize and tell the client', async (t) => {
  const app = await buildApp(t)
  const a1 = await connect(app, 'alice')
  const a2 = await connect(app, 'alice')
  const bob = await connect(app, 'bob')
  const id1 = a1.ready.data.connectionId
  t.equal(await app.realtime.join({ user: 'alice' }, 'team:7'), 2, 'every connection of the user joins')
  t.equal(await app.realtime.join({ user: 'alice' }, 'team:7'), 0, 'joining twice does nothing')
  t.equal(await app.realtime.join({ user: 'nobody' }, 'team:7'), 0)
  const joined = await a1.next('subscribed')
  t.same({ room: joined.room, recovered: joined.data.recovered }, { room: 'team:7', recovered: false })
  await a2.next('subscribed')
  await app.realtime.emit('team:7', thought('hello team'))
  t.equal((await a1.next('agent:thought')).room, 'team:7')
  t.equal((await a2.next('agent:thought')).room, 'team:7')

  t.equal(await app.realtime.leave(id1, 'team:7'), 1)
  t.equal(await app.realtime.leave(id1, 'team:7'), 0)
  t.equal(await app.realtime.leave('no-such-connection', 'team:7'), 0)
  t.same((await a1.next('unsubscribed')).room, 'team:7')
  await app.realtime.emit('team:7', thought('second'))
  t.equal((await a2.next('agent:thought')).data.content, 'second')
  t.equal(await app.realtime.join(id1, 'team:8'), 1, 'a single connection by id')
  await t.rejects(app.realtime.join(id1, 'bad room'), { code: 'FST_REALTIME_INVALID_EVENT' })
  t.equal(app.realtime.connection(id1)?.userId, 'alice')
  t.same([...(app.realtime.connection(id1)?.rooms ?? [])], ['team:8'])
  t.equal(app.realtime.connection('nope'), undefined)
  await bob.close()
  t.equal(bob.frames.filter((f) => f.room === 'team:7').length, 0)
})

t.test('with validate: false, an event without data is sent with data null', async (t) => {
  const app = await buildApp(t, { authorize: () => true, validate: false })
  const client = await connect(app)
  await client.subscribe('r')
  await app.realtime.emit('r', { type: 'agent:thought' } as never)
  const event = await client.next('agent:thought')
  t.equal(event.data, null)
  t.same(Object.keys(event), ['type', 'room', 'seq', 'data', 'ts'])
})

t.test('volatile events skip seq and history', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = await connect(app)
  const sub = await client.subscribe('r')
  await app.realtime.emit('r', thought('kept'))
  const v = await app.realtime.emit('r', { type: 'task_update', data: { taskId: 't', status: 'running', progress: 3 } }, { volatile: true })
  t.same(v, { room: 'r', seq: 1, epoch: sub.data.epoch })
  await client.next('agent:thought')
  const tick = await client.next('task_update')
  t.equal(tick.seq, undefined, 'a volatile event has no seq')
  t.same(Object.keys(tick), ['type', 'room', 'data', 'ts'])
  const none = await app.realtime.emit('empty', thought('nobody'), { volatile: true })
  t.same(none, { room: 'empty', seq: 0, epoch: '' })
  const late = await connect(app, 'bob')
  const resumed = await late.subscribe('r', { since: 0, epoch: sub.data.epoch })
  t.equal(resumed.data.recovered, true)
  const replayed = await late.next()
  t.equal(replayed.data.content, 'kept', 'only the kept event is replayed')
  await app.realtime.emit('r', thought('live'))
  t.equal((await late.next()).seq, 2)
})

t.test('200 clients × 100 events: every client gets all of them, in order', async (t) => {
  const app = await buildApp(t, { authorize: () => true, limits: { bufferedBytes: 16 * 1024 * 1024 } })
  const clients = await Promise.all(Array.from({ length: 200 }, (_, i) => connect(app, `u${i}`)))
  await Promise.all(clients.map((c) => c.subscribe('workflow:load')))
  for (let i = 1; i <= 100; i++) await app.realtime.emit('workflow:load', thought(`event ${i}`))
  const seqs = await Promise.all(clients.map(async (c) => (await c.collect('agent:thought', 100)).map((e) => e.seq)))
  const expected = Array.from({ length: 100 }, (_, i) => i + 1)
  t.equal(seqs.filter((s) => JSON.stringify(s) === JSON.stringify(expected)).length, 200)
  const stats = app.realtime.stats()
  t.equal(stats.connections, 200)
  t.equal(stats.subscriptions, 200)
  t.ok(stats.messagesOut >= 200 * 101)
  await Promise.all(clients.map((c) => c.close()))
})

t.test('a denied subscribe to a room already held ends that subscription', async (t) => {
  let allow = true
  const app = await buildApp(t, { authorize: () => allow })
  const client = await connect(app)
  t.equal((await client.subscribe('workflow:9')).type, 'subscribed')
  allow = false
  t.equal((await client.subscribe('workflow:9')).data.code, 'forbidden')
  await app.realtime.emit('workflow:9', thought('after the denial'))
  await client.subscribe('marker')
  allow = true
  await client.subscribe('marker')
  await app.realtime.emit('marker', thought('marker'))
  t.equal((await client.next('agent:thought')).data.content, 'marker', 'nothing of the denied room arrived')
})
