import t from 'tap'
import { RealtimeError, Type } from '../src/index.js'
import { buildApp, connect, delay, logCapture } from './helpers/index.js'

t.test('bad input gets an error reply with a documented code, and the connection stays', async (t) => {
  // A large bucket: this test sends two messages per case and is not about the rate limit.
  const app = await buildApp(t, { authorize: () => true, limits: { burst: 1000, messagesPerSecond: 1000 } })
  const client = await connect(app)
  const cases: Array<[string, unknown, string, RegExp]> = [
    ['text that is not JSON', '{"type":', 'invalid_json', /not valid JSON/],
    ['a __proto__ key', '{"type":"ping","__proto__":{"admin":true}}', 'invalid_json', /__proto__/],
    ['a constructor.prototype key', '{"type":"ping","constructor":{"prototype":{"x":1}}}', 'invalid_json', /constructor/],
    ['a JSON array', '[1,2]', 'invalid_message', /invalid envelope at \/: Expected object/],
    ['a JSON string', '"ping"', 'invalid_message', /Expected object/],
    ['null', 'null', 'invalid_message', /Expected object/],
    ['no type', { room: 'x' }, 'invalid_message', /\/type: Expected required property/],
    ['an empty type', { type: '' }, 'invalid_message', /\/type/],
    ['a numeric id', { type: 'ping', id: 5 }, 'invalid_message', /\/id: Expected string/],
    ['a huge id (not echoed back)', { type: 'ping', id: 'x'.repeat(200) }, 'invalid_message', /\/id/],
    ['an empty id', { type: 'ping', id: '' }, 'invalid_message', /\/id/],
    ['an extra field', { type: 'ping', admin: true }, 'invalid_message', /\/admin: Unexpected property/],
    ['an unknown type', { type: 'launch', id: 'u1' }, 'unknown_type', /unknown message type "launch"/],
    ['a server-only type', { type: 'ack', id: 'u2' }, 'unknown_type', /"ack"/],
    ['subscribe data with a wrong since', { type: 'subscribe', room: 'r', data: { since: -1 } }, 'invalid_message', /\/since/],
    ['subscribe data with an extra key', { type: 'subscribe', room: 'r', data: { from: 1 } }, 'invalid_message', /\/from/],
    ['auth without a token', { type: 'auth', data: {} }, 'invalid_message', /invalid "auth" message at \/data\/token/],
    ['auth without data', { type: 'auth' }, 'invalid_message', /invalid "auth" message at \/data: Expected required property/],
    ['a reply without id', { type: 'reply', data: 1 }, 'invalid_message', /invalid "reply" message at \/id: Expected required property/],
    [
      'a reply with a malformed error',
      { type: 'reply', id: 'q', error: { code: 1 } },
      'invalid_message',
      /invalid "reply" message at \/error/
    ],
    ['a ping with data', { type: 'ping', data: 1 }, 'invalid_message', /invalid "ping" message at \/data: Unexpected property/],
    ['an unsubscribe with data', { type: 'unsubscribe', room: 'r', data: {} }, 'invalid_message', /invalid "unsubscribe" message at \/data/]
  ]
  for (const [name, message, code, text] of cases) {
    client.send(message)
    const reply = await client.next('error')
    t.equal(reply.data.code, code, name)
    t.match(reply.data.message, text, name)
    client.send({ type: 'ping', id: 'alive' })
    t.equal((await client.next('pong')).id, 'alive', `${name}: the connection stays`)
  }
  client.send({ type: 'launch', id: 'with-id' })
  t.equal((await client.next('error')).id, 'with-id', 'the error carries the id of a message that had one')
  client.ws.send(Buffer.from([1, 2, 3]), { binary: true })
  t.match((await client.next('error')).data, { code: 'invalid_json', message: /binary frames/ })
  t.equal(app.realtime.stats().errors, cases.length + 2)
  t.equal(Object.getPrototypeOf({}).admin, undefined, 'Object.prototype is untouched')
})

t.test('too many invalid messages in a row close the connection with 1008', async (t) => {
  const app = await buildApp(t, { limits: { maxInvalidMessages: 3 } })
  const client = await connect(app)
  for (let i = 0; i < 3; i++) client.send('garbage')
  t.equal((await client.collect('error', 3)).length, 3)
  client.send({ type: 'ping' })
  await client.next('pong')
  for (let i = 0; i < 3; i++) client.send('garbage')
  await client.collect('error', 3)
  t.equal(client.closeCode, undefined, 'a valid message resets the count')
  client.send('garbage')
  const { code, reason } = await client.closed
  t.equal(code, 1008)
  t.equal(reason, 'too many invalid messages')
})

t.test('a frame over limits.maxPayload closes the connection with 1009', async (t) => {
  const app = await buildApp(t, { limits: { maxPayload: 1024 } })
  const client = await connect(app)
  client.send({ type: 'ping', id: 'x'.repeat(100) })
  client.send(JSON.stringify({ type: 'ping', data: 'x'.repeat(2000) }))
  const { code } = await client.closed
  t.equal(code, 1009)
  t.equal(app.realtime.stats().connections, 0)
})

t.test('a host websocket server with a larger maxPayload still closes oversize frames with 1009', async (t) => {
  const fastifyWebsocket = (await import('@fastify/websocket')).default
  const app = await buildApp(t, { limits: { maxPayload: 1024 } }, { before: (app) => app.register(fastifyWebsocket) })
  const client = await connect(app)
  client.send(JSON.stringify({ type: 'ping', data: 'x'.repeat(2000) }))
  t.equal((await client.closed).code, 1009)
})

t.test('past the rate limit messages are refused with rate_limited; a sustained flood is closed with 4029', async (t) => {
  const app = await buildApp(t, { limits: { messagesPerSecond: 10, burst: 5, maxRateLimited: 20 } })
  let calls = 0
  app.realtime.handle('work', Type.Object({}), () => {
    calls++
    return 'done'
  })
  const client = await connect(app)
  for (let i = 0; i < 8; i++) client.send({ type: 'work', id: `w${i}`, data: {} })
  const replies = await Promise.all(Array.from({ length: 8 }, () => client.next()))
  const acks = replies.filter((r) => r.type === 'ack')
  const limited = replies.filter((r) => r.type === 'error')
  t.ok(acks.length >= 5 && acks.length <= 6, `the burst passes (${acks.length})`)
  t.equal(acks.length + limited.length, 8)
  t.match(limited[0]?.data, { code: 'rate_limited', message: 'more than 10 messages per second' })
  t.ok(
    limited.every((l) => typeof l.id === 'string'),
    'rate_limited errors carry the message id'
  )
  await delay(300)
  client.send({ type: 'work', id: 'later', data: {} })
  t.equal((await client.next()).type, 'ack', 'tokens refill with time')
  for (let i = 0; i < 40; i++) client.send({ type: 'work', id: `f${i}`, data: {} })
  t.equal((await client.closed).code, 4029)
  t.ok(calls <= 5 + 1 + 3 + 5, `handler calls stay within burst + rate × t (${calls})`)
})

t.test('handle(): the return value is the ack; invalid data is refused before the handler runs', async (t) => {
  const app = await buildApp(t)
  const seen: unknown[] = []
  app.realtime.handle(
    'invoice:pay',
    Type.Object({ invoiceId: Type.String({ minLength: 1 }) }),
    async ({ data, user, connection, id, log }) => {
      seen.push({ data, user: user.sub, conn: connection.id, id, log: typeof log.info })
      return { paid: data.invoiceId }
    }
  )
  app.realtime.handle('fire', Type.Object({}), () => undefined)
  const client = await connect(app, 'alice')
  const ack = await client.call({ type: 'invoice:pay', id: 'p1', data: { invoiceId: 'in_1' } })
  t.same(ack, { type: 'ack', id: 'p1', data: { paid: 'in_1' } })
  t.same(seen, [{ data: { invoiceId: 'in_1' }, user: 'alice', conn: client.ready.data.connectionId, id: 'p1', log: 'function' }])
  const bad = await client.call({ type: 'invoice:pay', id: 'p2', data: { invoiceId: 42 } })
  t.same(bad.data, { code: 'invalid_message', message: 'invalid data for "invoice:pay" at /invoiceId: Expected string' })
  const none = await client.call({ type: 'invoice:pay', id: 'p3' })
  t.equal(none.data.code, 'invalid_message')
  t.equal(seen.length, 1, 'the handler never saw invalid data')
  t.same(await client.call({ type: 'fire', id: 'f1', data: {} }), { type: 'ack', id: 'f1', data: null })
  client.send({ type: 'fire', data: {} })
  client.send({ type: 'ping', id: 'after' })
  t.equal((await client.next()).type, 'pong', 'a message without id gets no ack')
})

t.test('a throwing handler becomes an internal error, logged with its details, and the process is unharmed', async (t) => {
  const logs = logCapture('info')
  const app = await buildApp(t, {}, { fastify: logs.fastify })
  app.realtime.handle('sync', Type.Object({}), () => {
    throw new Error('secret database password in this message')
  })
  app.realtime.handle('async', Type.Object({}), async () => {
    await delay(1)
    throw new TypeError('undefined is not a function')
  })
  app.realtime.handle('circular', Type.Object({}), () => {
    const o: Record<string, unknown> = {}
    o.self = o
    return o
  })
  app.realtime.handle('custom', Type.Object({}), () => {
    throw new RealtimeError('insufficient_funds', 'The balance is too low')
  })
  app.realtime.handle('empty-code', Type.Object({}), () => {
    throw new RealtimeError('', 'no code')
  })
  app.realtime.handle('function', Type.Object({}), () => () => 'not JSON')
  app.realtime.handle('late', Type.Object({}), async ({ connection }) => {
    connection.close(1000, 'bye')
    connection.close(1011, 'closing twice does nothing')
    await delay(5)
    return 'too late'
  })
  const client = await connect(app)
  for (const type of ['sync', 'async', 'circular']) {
    const reply = await client.call({ type, id: type, data: {} })
    t.same(reply, { type: 'error', id: type, data: { code: 'internal', message: 'internal error' } }, type)
  }
  t.same((await client.call({ type: 'custom', id: 'c', data: {} })).data, { code: 'insufficient_funds', message: 'The balance is too low' })
  t.same((await client.call({ type: 'empty-code', id: 'e', data: {} })).data, { code: 'internal', message: 'internal error' })
  t.same(
    await client.call({ type: 'function', id: 'f', data: {} }),
    { type: 'ack', id: 'f', data: null },
    'a value JSON cannot hold acks as null'
  )
  const failures = logs.records().filter((r) => r.msg === 'realtime handler failed')
  t.equal(failures.length, 4)
  t.match(failures[0], { level: 50, type: 'sync', err: { message: 'secret database password in this message' } })
  t.notOk(JSON.stringify(client.frames).includes('secret'), 'no detail reached the client')
  client.send({ type: 'late', id: 'l', data: {} })
  t.equal((await client.closed).code, 1000, 'a handler that resolves after close sends nothing and throws nothing')
  await delay(10)
})

t.test('handle() refuses reserved names, duplicates, bad schemas and bad handlers', async (t) => {
  const app = await buildApp(t)
  const handle = app.realtime.handle as (type: unknown, schema: unknown, handler: unknown) => void
  const ok = Type.Object({})
  app.realtime.handle('once', ok, () => 1)
  const cases: Array<[unknown, unknown, unknown, RegExp]> = [
    ['subscribe', ok, () => 1, /"subscribe" is a reserved control type/],
    ['once', ok, () => 1, /already registered/],
    ['', ok, () => 1, /1 to 128 characters/],
    [42, ok, () => 1, /1 to 128 characters/],
    ['x', { type: 'object' }, () => 1, /must be a TypeBox schema/],
    ['x', ok, 'nope', /handler must be a function/]
  ]
  for (const [type, schema, handler, message] of cases) {
    t.throws(() => handle(type, schema, handler), { code: 'FST_REALTIME_INVALID_HANDLER', message })
  }
})

t.test('ping is answered with pong and its id', async (t) => {
  const app = await buildApp(t)
  const client = await connect(app)
  t.same(await client.call({ type: 'ping', id: 'p' }), { type: 'pong', id: 'p' })
  client.send({ type: 'ping' })
  t.same(await client.next(), { type: 'pong' })
})

t.test('presence is refused while presence is not enabled for the room', async (t) => {
  const app = await buildApp(t)
  const client = await connect(app)
  const reply = await client.call({ type: 'presence', room: 'user:alice' })
  t.same(reply.data, { code: 'forbidden', message: 'presence is not enabled for "user:alice"' })
})

t.test('auth refreshes the token of a live connection; a bad or foreign token is refused and the connection stays', async (t) => {
  const { sign } = await import('./helpers/index.js')
  const app = await buildApp(t)
  const client = await connect(app, 'alice')
  const exp = Math.floor(Date.now() / 1000) + 7200
  t.same(await client.call({ type: 'auth', id: 'a1', data: { token: sign('alice', { exp }) } }), { type: 'ack', id: 'a1', data: { exp } })
  t.same((await client.call({ type: 'auth', id: 'a2', data: { token: sign('mallory') } })).data, {
    code: 'unauthorized',
    message: 'the token is for another user'
  })
  t.same((await client.call({ type: 'auth', id: 'a3', data: { token: 'garbage' } })).data, {
    code: 'unauthorized',
    message: 'Malformed token'
  })
  const noExp = sign('alice', { exp: undefined })
  t.same(await client.call({ type: 'auth', id: 'a4', data: { token: noExp } }), { type: 'ack', id: 'a4', data: { exp: null } })
  client.send({ type: 'auth', data: { token: sign('alice') } })
  t.same(await client.call({ type: 'ping', id: 'still' }), { type: 'pong', id: 'still' }, 'an auth without id gets no ack')
})
