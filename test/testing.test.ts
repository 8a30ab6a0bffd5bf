// fastify-realtime/testing: the client an application's own tests use, over a real socket and through injectWS.
import Fastify from 'fastify'
import t from 'tap'
import realtime, { RealtimeError, Type } from '../src/index.js'
import { connectTest } from '../src/testing.js'
import { buildApp, SECRET, sign } from './helpers/index.js'

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r1', content } })

// The README's example test, with its startRun() spelled out.
t.test('README: a run streams its thoughts and waits for the approval', async (t) => {
  const app = Fastify()
  await app.register(realtime, { jwt: { secret: SECRET }, authorize: ({ room }) => room.startsWith('workflow:') })
  app.realtime.handle('run:start', Type.Object({ prompt: Type.String() }), async ({ data }) => {
    setImmediate(async () => {
      await app.realtime.emit('workflow:1', { type: 'agent:thought', data: { runId: '1', content: `Reading "${data.prompt}"` } })
      const answer = await app.realtime.request<{ optionId: string }>('workflow:1', {
        type: 'hitl_request',
        data: { requestId: 'q1', question: 'Publish?', options: [{ id: 'yes', label: 'Yes' }] }
      })
      await app.realtime.emit('workflow:1', { type: 'agent:result', data: { runId: '1', output: answer.optionId } })
    })
    return { runId: '1' }
  })
  await app.listen({ port: 0 })
  t.teardown(() => app.close())

  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('workflow:1')
  t.same(await alice.send('run:start', { prompt: 'release notes' }), { runId: '1' })
  t.equal((await alice.next('agent:thought')).data.content, 'Reading "release notes"')
  alice.answer(await alice.next('hitl_request'), { optionId: 'yes' })
  t.equal((await alice.next('agent:result')).data.output, 'yes')
})

t.test('over a real socket: subscribe, next by type and room, send with its ack or error', async (t) => {
  const app = await buildApp(t, { authorize: ({ room }) => room !== 'secret' })
  app.realtime.handle('add', Type.Object({ a: Type.Number(), b: Type.Number() }), ({ data }) => data.a + data.b)
  app.realtime.handle('fail', Type.Object({}), () => {
    throw new RealtimeError('quota_exceeded', 'no more today')
  })
  const client = await connectTest(app, { user: 'alice', claims: { role: 'admin' } })
  t.equal(client.userId, 'alice')
  t.match(client.connectionId, /^[0-9a-f-]{36}$/)
  t.match(await client.subscribe('a'), { seq: 0, recovered: false })
  await client.subscribe('b')
  await t.rejects(client.subscribe('secret'), { name: 'RealtimeClientError', code: 'forbidden' })
  await app.realtime.emit('a', thought('in a'))
  await app.realtime.emit('b', thought('in b'))
  const inB = await client.next('agent:thought', { room: 'b' })
  t.equal(inB.data.content, 'in b', 'the frame of the room asked for, though one of another room came first')
  t.equal(client.queue.length, 1, 'the frame of room a stays queued')
  t.equal((await client.next()).room, 'a')
  t.equal(await client.send('add', { a: 2, b: 3 }), 5)
  await t.rejects(client.send('fail', {}), { code: 'quota_exceeded', message: 'no more today' })
  await t.rejects(client.send('nope', {}), { code: 'unknown_type' })
  await client.unsubscribe('a')
  client.raw('not json')
  t.equal((await client.next('error')).data.code, 'invalid_json')
  client.raw({ type: 'ping', id: 'p' })
  t.same(await client.next('pong'), { type: 'pong', id: 'p' })
  t.same(await client.close(), { code: 1000, reason: '' })
})

t.test('waits for frames in any order, and says what it waited for when nothing comes', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = await connectTest(app, { token: sign('bob'), timeout: 50 })
  t.equal(client.userId, 'bob', 'a token given as is')
  await client.subscribe('w')
  const result = client.next('agent:result')
  const thoughtFrame = client.next('agent:thought')
  await app.realtime.emit('w', thought('first'))
  await app.realtime.emit('w', { type: 'agent:result', data: { runId: 'r1', output: 1 } })
  t.equal((await thoughtFrame).data.content, 'first')
  t.equal((await result).data.output, 1)
  await t.rejects(client.next('agent:error'), { message: 'connectTest: no agent:error within 50 ms (queued: nothing)' })
  await app.realtime.emit('w', thought('queued'))
  await t.rejects(client.next('agent:error', { room: 'w', timeout: 20 }), {
    message: 'connectTest: no agent:error in "w" within 20 ms (queued: agent:thought)'
  })
})

t.test('answers and declines server requests', async (t) => {
  const app = await buildApp(t)
  const client = await connectTest(app, { user: 'alice' })
  const question = { type: 'hitl_request' as const, data: { requestId: 'q', question: 'Go?' } }
  const answered = app.realtime.request(client.connectionId, question)
  client.answer(await client.next('hitl_request'), { ok: true })
  t.same(await answered, { ok: true })
  const declined = app.realtime.request(client.connectionId, question)
  client.decline(await client.next('hitl_request'), 'dismissed', 'closed the dialog')
  await t.rejects(declined, { message: /dismissed: closed the dialog/ })
  const silent = app.realtime.request(client.connectionId, question)
  client.decline(await client.next('hitl_request'), 'dismissed')
  await t.rejects(silent, { message: /dismissed: $/ })
})

t.test('through injectWS when the app does not listen, with the same behaviour', async (t) => {
  const app = Fastify()
  await app.register(realtime, { jwt: { secret: SECRET } })
  await app.ready()
  t.teardown(() => app.close())
  const client = await connectTest(app, { user: 'carol' })
  await client.subscribe('user:carol')
  await app.realtime.emit('user:carol', thought('injected'))
  t.equal((await client.next('agent:thought')).data.content, 'injected')
  await t.rejects(connectTest(app, { token: 'garbage' }), { message: /connectTest: the upgrade was refused \(.*401\)/ })
})

t.test('the connection closes with the app: a test needs no cleanup, and a pending wait fails at once', async (t) => {
  const app = await buildApp(t)
  const client = await connectTest(app)
  t.equal(client.userId, 'test-user')
  const waiting = client.next('agent:thought')
  const alsoWaiting = client.next('agent:result')
  await app.close()
  await t.rejects(waiting, { message: 'connectTest: the connection closed (1001) while a frame was awaited' })
  await t.rejects(alsoWaiting)
  t.same(await client.closed, { code: 1001, reason: 'server shutting down' })
  await t.rejects(client.next('agent:thought'), { message: 'connectTest: the connection is closed (1001); no agent:thought' })
})

t.test('refusals and misuse are explained', async (t) => {
  const app = await buildApp(t)
  await t.rejects(connectTest(app, { token: 'garbage' }), { message: 'connectTest: the upgrade was refused (HTTP 401)' })
  await t.rejects(connectTest(app, { headers: { origin: 'https://evil.example' } }), { message: /HTTP 403/ })
  const idle = Fastify()
  await idle.register(realtime, { jwt: { secret: SECRET } })
  await idle.ready()
  t.teardown(() => idle.close())
  await t.rejects(connectTest(idle, { transport: 'socket' }), { message: /does not listen; call app.listen/ })
  const bare = Fastify()
  t.teardown(() => bare.close())
  await t.rejects(connectTest(bare), { message: 'connectTest: register fastify-realtime on this app first' })
})
