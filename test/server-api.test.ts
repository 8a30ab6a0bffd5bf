// The HTTP server API: publish, batch, streams, questions, runs, presence, disconnect and stats, with server keys.
import SwaggerParser from '@apidevtools/swagger-parser'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { memoryAdapter } from '../src/adapters/memory.js'
import { idempotency } from '../src/api/idempotency.js'
import { rateLimiter } from '../src/api/rate-limit.js'
import { FST_REALTIME_INVALID_HANDLER } from '../src/errors.js'
import { resolveOptions } from '../src/options.js'
import { connectTest } from '../src/testing.js'
import { until } from './helpers/client.js'
import { buildApp, logCapture, refused, sign } from './helpers/index.js'

const KEY = 'server-key-0123456789abcdef'
const thought = (content: string, runId = 'r1') => ({ type: 'agent:thought', data: { runId, content } })

function base(app: FastifyInstance): string {
  const address = app.server.address() as { port: number }
  return `http://127.0.0.1:${address.port}/ws/api`
}

/** A request to the API with the server key (or `key`); resolves with the status, body and headers. */
async function call(app: FastifyInstance, method: string, route: string, body?: unknown, headers: Record<string, string> = {}, key = KEY) {
  const res = await fetch(`${base(app)}${route}`, {
    method,
    headers: {
      ...(key === '' ? {} : { authorization: `Bearer ${key}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), headers: res.headers }
}

const api = (t: Parameters<typeof buildApp>[0], serverApi: Record<string, unknown> = {}, fastify?: object) =>
  buildApp(t, { authorize: () => true, serverApi: { keys: [KEY], ...serverApi } }, fastify === undefined ? {} : { fastify })

t.test('a server key publishes an event that subscribers receive, and learns its seq and epoch', async (t) => {
  const app = await api(t)
  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('workflow:1')
  const answer = await call(app, 'POST', '/publish', { room: 'workflow:1', ...thought('hello') })
  t.equal(answer.status, 200)
  const event = await alice.next('agent:thought')
  t.match(answer.body, { room: 'workflow:1', seq: event.seq, epoch: String })
  t.same(event.data, { runId: 'r1', content: 'hello' })
  const vol = await call(app, 'POST', '/publish', { room: 'workflow:1', ...thought('tick'), volatile: true, immediate: true })
  t.equal(vol.body.seq, event.seq, 'a volatile event takes no seq')
  t.equal((await alice.next('agent:thought')).seq, undefined)
})

t.test('a batch is published in order, and a bad event in it publishes none and names its pointer', async (t) => {
  const app = await api(t)
  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('workflow:b')
  const events = Array.from({ length: 5 }, (_, i) => ({ room: 'workflow:b', ...thought(`e${i}`) }))
  const ok = await call(app, 'POST', '/batch', { events })
  t.equal(ok.status, 200)
  t.same(
    ok.body.results.map((r: { seq: number }) => r.seq),
    [1, 2, 3, 4, 5]
  )
  for (let i = 0; i < 5; i++) t.equal((await alice.next('agent:thought')).data.content, `e${i}`)
  const bad = await call(app, 'POST', '/batch', {
    events: [events[0], { room: 'workflow:b', type: 'agent:thought', data: { runId: 'r1' } }]
  })
  t.equal(bad.status, 400)
  t.match(bad.body, { code: 'invalid_message', pointer: '/events/1/data/content' })
  await call(app, 'POST', '/publish', { room: 'workflow:b', ...thought('marker') })
  t.equal((await alice.next('agent:thought')).data.content, 'marker', 'nothing of the bad batch was published')
})

t.test('bad payloads get 400 with the JSON pointer of the first problem, and lose nothing', async (t) => {
  const app = await api(t)
  const cases: Array<[unknown, number, string, string | undefined]> = [
    [{ type: 'agent:thought', data: {} }, 400, 'invalid_message', '/room'],
    [{ room: 'workflow:1', ...thought('x'), extra: 1 }, 400, 'invalid_message', '/extra'],
    [{ room: 'workflow:1', type: 'agent:nope', data: {} }, 400, 'unknown_type', '/type'],
    [{ room: 'bad{room}', ...thought('x') }, 400, 'invalid_room', '/room'],
    [{ room: 'workflow:1', type: 'agent:thought', data: { runId: 'r1', content: 7 } }, 400, 'invalid_message', '/data/content'],
    [{ room: 'workflow:1', type: 'agent:thought', data: 'text' }, 400, 'invalid_message', '/data'],
    [[], 400, 'invalid_message', ''],
    ['{"room":', 400, 'invalid_message', ''],
    ['', 400, 'invalid_message', '']
  ]
  for (const [body, status, code, pointer] of cases) {
    const answer = await call(app, 'POST', '/publish', body)
    t.equal(answer.status, status, JSON.stringify(body))
    t.match(answer.body, { statusCode: status, code, pointer })
  }
  const plain = await call(app, 'POST', '/publish', '<event/>', { 'content-type': 'application/xml' })
  t.equal(plain.status, 415)
  t.equal(plain.body.code, 'invalid_message')
})

t.test('a bad key, a missing key and a user token get 401; keys never reach a log line', async (t) => {
  const logs = logCapture('debug')
  const app = await api(t, {}, logs.fastify)
  t.equal((await call(app, 'POST', '/publish', {}, {}, 'wrong-key-0123456789abcdef')).status, 401)
  t.equal((await call(app, 'POST', '/publish', {}, {}, '')).status, 401)
  const user = await call(app, 'POST', '/publish', { room: 'workflow:1', ...thought('x') }, {}, sign('alice'))
  t.match(user, { status: 401, body: { code: 'unauthorized' } })
  t.equal((await call(app, 'GET', '/stats')).status, 200)
  t.notOk(
    logs.lines.some((l) => l.includes(KEY)),
    'no log line holds the key'
  )
})

t.test('a server key is refused on the WebSocket endpoint (401) and in an auth message', async (t) => {
  const app = await api(t)
  const refusal = await refused(app, 'alice', { token: KEY })
  t.equal(refusal.status, 401)
  t.match(refusal.body, { code: 'FST_REALTIME_UNAUTHORIZED', message: 'Server API credentials are not accepted on this endpoint' })
  const alice = await connectTest(app, { user: 'alice' })
  alice.raw({ type: 'auth', id: 'a1', data: { token: KEY } })
  t.match(await alice.next('error'), { id: 'a1', data: { code: 'unauthorized' } })
})

t.test('with verify, a service token with the scope is accepted; a user token is refused on the API and not on the socket', async (t) => {
  const app = await buildApp(t, {
    authorize: () => true,
    serverApi: {
      verify: (token) => {
        if (token === 'throws') throw new Error('broken verifier')
        return (app.jwt.decode(token) as { scope?: string } | null)?.scope === 'realtime:api'
      }
    }
  })
  const service = sign('svc', { scope: 'realtime:api' })
  t.equal((await call(app, 'GET', '/stats', undefined, {}, service)).status, 200)
  t.equal((await call(app, 'GET', '/stats', undefined, {}, sign('alice'))).status, 401)
  t.equal((await call(app, 'GET', '/stats', undefined, {}, 'throws')).status, 401, 'a throwing verify refuses')
  t.equal((await refused(app, 'svc', { token: service })).status, 401)
  const alice = await connectTest(app, { user: 'alice' })
  t.equal(alice.userId, 'alice')
})

t.test('an oversize body gets 413 and a flood gets 429 with Retry-After', async (t) => {
  const app = await api(t, { bodyLimit: 1024, rateLimit: { perSecond: 1, burst: 3 } })
  const big = await call(app, 'POST', '/publish', { room: 'workflow:1', ...thought('x'.repeat(2000)) })
  t.match(big, { status: 413, body: { code: 'payload_too_large' } })
  const statuses: number[] = []
  let retryAfter: string | null = null
  for (let i = 0; i < 6; i++) {
    const r = await call(app, 'GET', '/stats')
    statuses.push(r.status)
    if (r.status === 429) retryAfter = r.headers.get('retry-after')
  }
  t.ok(statuses.includes(429), `flooding is limited: ${statuses}`)
  t.equal(retryAfter, '1')
  const unlimited = await api(t, { rateLimit: false })
  for (let i = 0; i < 5; i++) t.equal((await call(unlimited, 'GET', '/stats')).status, 200)
})

t.test('retries with one Idempotency-Key produce exactly one event and the same answer', async (t) => {
  const app = await api(t)
  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('workflow:i')
  const body = { room: 'workflow:i', ...thought('once') }
  const first = await call(app, 'POST', '/publish', body, { 'idempotency-key': 'k1' })
  const again = await call(app, 'POST', '/publish', body, { 'idempotency-key': 'k1' })
  t.same(again.body, first.body)
  t.equal(again.headers.get('idempotent-replayed'), 'true')
  const other = await call(app, 'POST', '/publish', { ...body, data: { runId: 'r1', content: 'other' } }, { 'idempotency-key': 'k1' })
  t.match(other, { status: 409, body: { code: 'idempotency_conflict' } })
  const batch = { events: [body, body] }
  const b1 = await call(app, 'POST', '/batch', batch, { 'idempotency-key': 'k2' })
  t.same((await call(app, 'POST', '/batch', batch, { 'idempotency-key': 'k2' })).body, b1.body)
  t.equal((await call(app, 'POST', '/publish', body, { 'idempotency-key': '' })).status, 400)
  await call(app, 'POST', '/publish', { room: 'workflow:i', ...thought('marker') })
  const contents: string[] = []
  for (;;) {
    const e = await alice.next('agent:thought')
    contents.push(e.data.content)
    if (e.data.content === 'marker') break
  }
  t.same(contents, ['once', 'once', 'once', 'marker'], 'one event per key (the batch holds two)')
})

t.test('a stream over HTTP coalesces appends, tells a late joiner the text so far, and ends with the whole text', async (t) => {
  const app = await api(t)
  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('workflow:s')
  const opened = await call(app, 'POST', '/streams', { room: 'workflow:s', ...thought(''), window: 20 })
  t.equal(opened.status, 201)
  const { id } = opened.body
  t.equal((await alice.next('stream')).data.id, id)
  for (let i = 0; i < 20; i++) {
    const r = await call(app, 'POST', `/streams/${id}/append`, { text: `t${i} ` })
    t.match(r.body, { id, cancelled: false })
  }
  const late = await connectTest(app, { user: 'late' })
  const info = (await late.subscribe('workflow:s')) as unknown as { streams: Array<{ id: string; text: string }> }
  t.equal(info.streams[0]?.id, id)
  const ended = await call(app, 'POST', `/streams/${id}/end`)
  t.match(ended.body, { id, room: 'workflow:s', seq: 1, cancelled: false })
  const whole = Array.from({ length: 20 }, (_, i) => `t${i} `).join('')
  t.equal((await alice.next('agent:thought')).data.content, whole)
  t.equal((await late.next('agent:thought')).data.content, whole)
  t.match(await call(app, 'POST', `/streams/${id}/append`, { text: 'x' }), { status: 404, body: { code: 'not_found' } })
  t.match(await call(app, 'POST', '/streams', { room: 'workflow:s', ...thought(''), field: 'step' }), {
    status: 400,
    body: { pointer: '/data/step' }
  })
})

t.test('a client cancel reaches a streaming run: each append answers cancelled, and so does a long-poll of the run', async (t) => {
  const app = await api(t)
  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('workflow:c')
  const { body: opened } = await call(app, 'POST', '/streams', { room: 'workflow:c', ...thought(''), runId: 'run-1' })
  t.match((await call(app, 'POST', `/streams/${opened.id}/append`, { text: 'a' })).body, { cancelled: false })
  const polling = call(app, 'GET', '/runs?room=workflow:c&runId=run-1&wait=5')
  await alice.cancel('workflow:c', 'run-1')
  t.match((await polling).body, { room: 'workflow:c', runId: 'run-1', cancelled: true, reason: /cancelled by user alice/ })
  t.match((await call(app, 'POST', `/streams/${opened.id}/append`, { text: 'b' })).body, { cancelled: true })
  t.match((await call(app, 'POST', `/streams/${opened.id}/end`)).body, { cancelled: true, seq: 1 })
  t.equal((await call(app, 'GET', '/runs?room=workflow:c&runId=run-1')).status, 404, 'the run ended with its stream')
})

t.test('a stream in a run registered before it leaves the run registered when it ends, until its DELETE', async (t) => {
  const app = await api(t)
  t.equal((await call(app, 'POST', '/runs', { room: 'workflow:r', runId: 'run-2' })).status, 201)
  const { body: opened } = await call(app, 'POST', '/streams', { room: 'workflow:r', ...thought(''), runId: 'run-2' })
  t.match((await call(app, 'POST', `/streams/${opened.id}/end`)).body, { cancelled: false })
  t.match((await call(app, 'GET', '/runs?room=workflow:r&runId=run-2')).body, { cancelled: false }, 'the run outlived its stream')
  await app.realtime.cancel({ room: 'workflow:r', runId: 'run-2' })
  t.match((await call(app, 'GET', '/runs?room=workflow:r&runId=run-2')).body, { cancelled: true }, 'and can still be cancelled')
  t.equal((await call(app, 'DELETE', '/runs?room=workflow:r&runId=run-2')).status, 204)
  t.equal((await call(app, 'GET', '/runs?room=workflow:r&runId=run-2')).status, 404, 'gone once deleted')
})

t.test('a run registered over HTTP is long-polled, cancelled by the server API, and ended', async (t) => {
  const app = await api(t)
  const reg = await call(app, 'POST', '/runs', { room: 'workflow:r', runId: 'r9' })
  t.match(reg, { status: 201, body: { room: 'workflow:r', runId: 'r9', cancelled: false } })
  t.match((await call(app, 'POST', '/runs', { room: 'workflow:r', runId: 'r9' })).body, { cancelled: false }, 'twice is one run')
  t.match((await call(app, 'GET', '/runs?room=workflow:r&runId=r9&wait=0')).body, { cancelled: false })
  const polling = call(app, 'GET', '/runs?room=workflow:r&runId=r9&wait=5')
  t.match((await call(app, 'POST', '/cancel', { room: 'workflow:r', runId: 'r9' })).body, { room: 'workflow:r', runId: 'r9' })
  t.match((await polling).body, { cancelled: true, reason: /cancelled by the application/ })
  const ending = call(app, 'GET', '/runs?room=workflow:r&runId=r10&wait=5')
  t.equal((await ending).status, 404)
  await call(app, 'POST', '/runs', { room: 'workflow:r', runId: 'r10' })
  const waiting = call(app, 'GET', '/runs?room=workflow:r&runId=r10&wait=5')
  t.equal((await call(app, 'DELETE', '/runs?room=workflow:r&runId=r10')).status, 204)
  t.match((await waiting).body, { cancelled: false }, 'ending a run ends its long-poll')
  t.match(await call(app, 'GET', '/runs?room=workflow:r&runId=r9&wait=999'), { status: 400, body: { code: 'invalid_message' } })
  t.match(await call(app, 'POST', '/runs', { room: 'bad{room}', runId: 'x' }), { status: 400, body: { code: 'invalid_room' } })
})

t.test('an idle run or stream is ended after idleTimeout', async (t) => {
  const app = await api(t, { idleTimeout: 50 })
  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('workflow:idle')
  await call(app, 'POST', '/runs', { room: 'workflow:idle', runId: 'lazy' })
  const { body } = await call(app, 'POST', '/streams', { room: 'workflow:idle', ...thought('so far'), runId: 'lazy2' })
  t.equal((await alice.next('agent:thought')).data.content, 'so far', 'the abandoned stream is ended with its text')
  t.equal((await call(app, 'POST', `/streams/${body.id}/append`, { text: 'x' })).status, 404)
  t.equal((await call(app, 'GET', '/runs?room=workflow:idle&runId=lazy')).status, 404)
})

t.test('a question asked over HTTP is long-polled until an SDK client answers; the first answer wins', async (t) => {
  const app = await api(t)
  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('workflow:q')
  const question = { room: 'workflow:q', type: 'hitl_request', data: { requestId: 'h1', question: 'Deploy?' } }
  const posed = await call(app, 'POST', '/questions', question, { 'idempotency-key': 'q-key' })
  t.equal(posed.status, 201)
  const { id } = posed.body
  t.same(
    (await call(app, 'POST', '/questions', question, { 'idempotency-key': 'q-key' })).body,
    posed.body,
    'the key gives the same question'
  )
  t.same((await call(app, 'GET', `/questions/${id}`)).body, { id, status: 'pending' })
  const asked = await alice.next('hitl_request')
  t.equal(asked.id, id)
  const polling = call(app, 'GET', `/questions/${id}?wait=5`)
  alice.answer(asked, { optionId: 'yes' })
  t.same((await polling).body, { id, status: 'answered', answer: { optionId: 'yes' } })
  t.same((await call(app, 'POST', '/questions', question, { 'idempotency-key': 'q-key' })).body, posed.body, 'answered, still the same')
  t.match(await call(app, 'GET', '/questions/q.none'), { status: 404 })
  t.match(await call(app, 'POST', '/questions', { ...question, user: 'alice' }), { status: 400, pointer: undefined })
  t.match(await call(app, 'POST', '/questions', { ...question, room: 'workflow:q', data: {} }), {
    status: 400,
    body: { pointer: '/data/requestId' }
  })
})

t.test('a declined or timed-out question says so', async (t) => {
  const app = await api(t)
  const bob = await connectTest(app, { user: 'bob' })
  await bob.subscribe('user:bob')
  const posed = await call(app, 'POST', '/questions', { user: 'bob', type: 'hitl_request', data: { requestId: 'h2', question: 'Pay?' } })
  t.equal(posed.body.room, 'user:bob')
  bob.decline(await bob.next('hitl_request'), 'rejected', 'not now')
  t.same((await call(app, 'GET', `/questions/${posed.body.id}?wait=5`)).body, {
    id: posed.body.id,
    status: 'declined',
    error: { code: 'rejected', message: 'not now' }
  })
  const quick = await call(app, 'POST', '/questions', {
    user: 'bob',
    type: 'hitl_request',
    data: { requestId: 'h3', question: '?' },
    timeout: 20
  })
  t.same((await call(app, 'GET', `/questions/${quick.body.id}?wait=5`)).body, { id: quick.body.id, status: 'timeout' })
})

t.test('presence, disconnect and stats', async (t) => {
  const app = await buildApp(t, { authorize: () => true, presence: true, serverApi: { keys: [KEY] } })
  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('workflow:p')
  const presence = await call(app, 'GET', '/presence?room=workflow:p')
  t.same(presence.body, { room: 'workflow:p', members: [{ user: 'alice', connections: 1 }] })
  t.match(await call(app, 'GET', '/presence'), { status: 400 })
  t.match(await call(app, 'GET', '/presence?room=no%7Bway%7D'), { status: 400, body: { code: 'invalid_room' } })
  t.match((await call(app, 'GET', '/stats')).body, { connections: 1, subscriptions: 1 })
  t.same((await call(app, 'POST', '/disconnect', { user: 'alice' })).body, { user: 'alice' })
  t.same(await alice.closed, { code: 4503, reason: 'disconnected by the server' })
  t.match(await call(app, 'POST', '/disconnect', { user: 'alice', code: 1000 }), { status: 400, body: { pointer: '/code' } })
})

t.test('the OpenAPI document of the routes is valid OpenAPI 3 and served beside AsyncAPI', async (t) => {
  const app = await buildApp(t, { authorize: () => true, asyncapi: true, serverApi: { keys: [KEY], openapi: true } })
  const address = app.server.address() as { port: number }
  const res = await fetch(`http://127.0.0.1:${address.port}/ws/openapi.json`)
  const doc = await res.json()
  t.equal(doc.openapi, '3.1.0')
  const valid = await SwaggerParser.validate(structuredClone(doc))
  t.ok(valid.paths?.['/ws/api/publish'], 'publish is documented')
  t.ok(doc.components.schemas['event.agent_thought'], 'each registry event is a component')
  t.same(Object.keys(doc.paths).sort(), [
    '/ws/api/batch',
    '/ws/api/cancel',
    '/ws/api/disconnect',
    '/ws/api/presence',
    '/ws/api/publish',
    '/ws/api/questions',
    '/ws/api/questions/{id}',
    '/ws/api/runs',
    '/ws/api/state',
    '/ws/api/state/patch',
    '/ws/api/stats',
    '/ws/api/streams',
    '/ws/api/streams/{id}/append',
    '/ws/api/streams/{id}/end'
  ])
  t.equal((await fetch(`http://127.0.0.1:${address.port}/ws/asyncapi.json`)).status, 200)
})

t.test('serverApi options are checked at registration, naming the option', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [{}, /needs "keys" or "verify"/],
    [{ keys: ['short'] }, /"serverApi.keys" must be an array of strings of at least 16 characters/],
    [{ keys: [KEY], verify: 1 }, /"serverApi.verify" must be a function/],
    [{ keys: [KEY], nope: 1 }, /unknown option "serverApi.nope"/],
    [{ keys: [KEY], rateLimit: { perSecond: 0 } }, /"serverApi.rateLimit.perSecond" must be a positive integer/],
    [{ keys: [KEY], maxWait: 601 }, /"serverApi.maxWait" must be at most 600 seconds/],
    [{ keys: [KEY], openapi: 'yes' }, /"serverApi.openapi" must be a boolean/]
  ]
  for (const [serverApi, message] of bad) {
    t.throws(() => resolveOptions({ jwt: { secret: 'x'.repeat(32) }, serverApi }), { code: 'FST_REALTIME_INVALID_OPTION', message })
  }
  const ok = resolveOptions({ jwt: { secret: 'x'.repeat(32) }, serverApi: { keys: [KEY], rateLimit: { perSecond: 10 } } })
  t.match(ok.serverApi, { rateLimit: { perSecond: 10, burst: 20 }, bodyLimit: 1024 * 1024, maxWait: 30, openapi: false })
})

t.test('an idempotency key runs its work once: a concurrent retry gets 409, a failure frees the key', async (t) => {
  const keys = idempotency(memoryAdapter(), 60_000)
  let release = (): void => undefined
  const slow = keys.once('key:0', 'k', 'fp', () => new Promise<string>((resolve) => (release = () => resolve('done'))))
  await t.rejects(
    keys.once('key:0', 'k', 'fp', async () => 'twice'),
    { statusCode: 409, code: 'idempotency_conflict', message: /still running/ }
  )
  release()
  t.same(await slow, { replayed: false, answer: 'done' })
  t.same(await keys.once('key:0', 'k', 'fp', async () => 'twice'), { replayed: true, answer: 'done' })
  t.same(await keys.once('key:1', 'k', 'fp', async () => 'another credential'), { replayed: false, answer: 'another credential' })
  await t.rejects(
    keys.once('key:0', 'f', 'fp', async () => {
      throw new Error('failed')
    }),
    /failed/
  )
  t.same(await keys.once('key:0', 'f', 'fp', async () => 'retried'), { replayed: false, answer: 'retried' })
})

t.test('closing the app answers the waiting long-polls and ends HTTP streams and runs', async (t) => {
  const logs = logCapture('info')
  const app = await api(t, {}, logs.fastify)
  const posed = await call(app, 'POST', '/questions', { user: 'nobody', type: 'hitl_request', data: { requestId: 'c', question: '?' } })
  await call(app, 'POST', '/streams', { room: 'workflow:close', ...thought('') })
  await call(app, 'POST', '/runs', { room: 'workflow:close', runId: 'r' })
  const question = call(app, 'GET', `/questions/${posed.body.id}?wait=20`)
  const run = call(app, 'GET', '/runs?room=workflow:close&runId=r&wait=20')
  // Both long-polls have reached the server.
  await until(() => logs.records().filter((r) => /wait=20/.test(String((r.req as { url?: string } | undefined)?.url))).length === 2)
  const started = Date.now()
  await app.close()
  // Answered at close with the question as it is then: still open, or declined by the shutdown itself.
  const answered = (await question).body
  t.equal(answered.id, posed.body.id)
  t.ok(['pending', 'declined'].includes(answered.status), `status ${answered.status}`)
  t.match((await run).body, { cancelled: false })
  t.ok(Date.now() - started < 5000, 'without waiting for the long-polls to time out')
})

t.test('an unexpected failure answers 500 internal and is logged, with no details sent', async (t) => {
  const logs = logCapture('error')
  const failing = { ...memoryAdapter(), presenceList: () => Promise.reject(new FST_REALTIME_INVALID_HANDLER('a bug')) }
  const app = await buildApp(t, { authorize: () => true, adapter: failing, serverApi: { keys: [KEY] } }, { fastify: logs.fastify })
  const answer = await call(app, 'GET', '/presence?room=workflow:x')
  t.same(answer, {
    status: 500,
    body: { statusCode: 500, code: 'internal', error: 'Internal Server Error', message: 'internal error' },
    headers: answer.headers
  })
  t.ok(logs.records().some((r) => r.msg === 'realtime server API request failed'))
  t.match(
    await call(
      app,
      'POST',
      '/questions',
      { user: 'u', type: 'hitl_request', data: { requestId: 'c', question: '?' } },
      { 'idempotency-key': 'x'.repeat(300) }
    ),
    {
      status: 400,
      body: { code: 'invalid_message', message: /Idempotency-Key/ }
    }
  )
})

t.test('the rate limiter refills over time and forgets resting credentials past its bound', async (t) => {
  const limiter = rateLimiter({ perSecond: 2, burst: 2 }, 2)
  t.equal(limiter.take('a', 0), 0)
  t.equal(limiter.take('a', 0), 0)
  t.equal(limiter.take('a', 0), 1, 'empty: retry in a second')
  t.equal(limiter.take('a', 500), 0, 'half a second later, one more')
  t.equal(limiter.take('b', 500), 0)
  t.equal(limiter.take('c', 10_000), 0, 'a third credential, once the others are at rest')
  t.equal(limiter.size, 1, 'the resting ones were forgotten')
  t.equal(limiter.take('d', 10_000), 0)
  t.equal(limiter.take('e', 10_000), 0)
  t.equal(limiter.size, 3, 'busy ones are kept (c and d just spent a token): the bound is soft')
})

t.test('state rooms over HTTP: read, replace, patch (once per Idempotency-Key), and refusals that change nothing', async (t) => {
  const app = await api(t)
  t.same((await call(app, 'GET', '/state?room=plan:1')).body, { room: 'plan:1', version: 0, value: null }, 'no value yet')
  const alice = await connectTest(app, { user: 'alice' })
  await alice.subscribe('plan:1')
  const set = await call(app, 'POST', '/state', { room: 'plan:1', value: { nodes: { a: 'todo', b: 'todo' } } })
  t.same(set, { ...set, status: 200 })
  t.match(set.body, { room: 'plan:1', version: 1, ops: [{ op: 'replace', path: '', value: { nodes: { a: 'todo', b: 'todo' } } }] })
  t.match((await alice.next('state_patch')).data, { version: 1 })

  const ops = [{ op: 'replace', path: '/nodes/a', value: 'done' }]
  const patched = await call(app, 'POST', '/state/patch', { room: 'plan:1', ops }, { 'idempotency-key': 'p1' })
  t.same(patched.body, { room: 'plan:1', version: 2, ops })
  const retried = await call(app, 'POST', '/state/patch', { room: 'plan:1', ops }, { 'idempotency-key': 'p1' })
  t.same([retried.body, retried.headers.get('idempotent-replayed')], [patched.body, 'true'], 'a retry changes nothing')
  t.same((await alice.next('state_patch')).data.ops, ops)

  const failedTest = await call(app, 'POST', '/state/patch', {
    room: 'plan:1',
    ops: [
      { op: 'test', path: '/nodes/b', value: 'done' },
      { op: 'remove', path: '/nodes/a' }
    ]
  })
  t.match(failedTest, { status: 422, body: { code: 'invalid_state', message: /nothing changed/ } })
  const badOp = await call(app, 'POST', '/state/patch', { room: 'plan:1', ops: [{ op: 'append', path: '/x' }] })
  t.match(badOp, { status: 400, body: { code: 'invalid_message', pointer: '/ops/0/op' } })
  t.match(await call(app, 'POST', '/state', { room: 'plan{1}', value: 1 }), {
    status: 400,
    body: { code: 'invalid_room', pointer: '/room' }
  })
  t.match(await call(app, 'POST', '/state', { room: 'plan:1' }), { status: 400, body: { pointer: '/value' } })
  t.match(await call(app, 'GET', '/state'), { status: 400, body: { code: 'invalid_message' } })

  t.same((await call(app, 'GET', '/state?room=plan:1')).body, { room: 'plan:1', version: 2, value: { nodes: { a: 'done', b: 'todo' } } })
  // A marker: no refused change and no retry reached the subscriber.
  await call(app, 'POST', '/state/patch', { room: 'plan:1', ops: [{ op: 'add', path: '/marker', value: true }] })
  t.same((await alice.next('state_patch')).data.ops, [{ op: 'add', path: '/marker', value: true }])
})
