import { Agent, get as httpGet } from 'node:http'
import t from 'tap'
import { connect, latch, logCapture, sign } from './helpers/index.js'
import { baseUrl, openStream, streamApp } from './helpers/sse.js'

const thought = (n: number) => ({ type: 'agent:thought' as const, data: { runId: 'run', content: `event ${n}` } })
const allowAll = { authorize: () => true }

t.test('a stream opens with event-stream headers, retry and ready, before anything else', async (t) => {
  const app = await streamApp(t, { ...allowAll, sse: { retry: 1500 } })
  const stream = await openStream(app, 'alice')
  t.equal(stream.response.headers.get('content-type'), 'text/event-stream; charset=utf-8')
  t.equal(stream.response.headers.get('cache-control'), 'no-cache')
  t.equal(stream.response.headers.get('x-accel-buffering'), 'no')
  t.equal(stream.parser.retry, 1500)
  t.equal(stream.ready.data.userId, 'alice')
  t.same(app.realtime.stats().transports, { websocket: 0, sse: 1 })
  const ws = await connect(app, 'bob')
  t.same(app.realtime.stats().transports, { websocket: 1, sse: 1 })
  await ws.close()
  stream.cut()
})

t.test('rooms in the query are subscribed through authorize; events carry an id naming every room', async (t) => {
  const asked: string[] = []
  const app = await streamApp(t, {
    authorize: ({ room }) => {
      asked.push(room)
      return room !== 'secret'
    }
  })
  const stream = await openStream(app, 'alice', { rooms: ['a:1', 'b:2', 'secret'] })
  const answers = [await stream.next('subscribed'), await stream.next('subscribed'), await stream.next('error')]
  t.same(answers.map((f) => f.room).sort(), ['a:1', 'b:2', 'secret'])
  t.equal(answers[2]?.data.code, 'forbidden')
  t.same(asked.sort(), ['a:1', 'b:2', 'secret'])
  const epochOf = (room: string) => answers.find((f) => f.room === room)?.data.epoch as string
  await app.realtime.emit('a:1', thought(1))
  const event = await stream.next('agent:thought')
  t.equal(event.seq, 1)
  const parts = stream.lastId.split(' ').sort()
  t.same(parts, [`a:1~${epochOf('a:1')}~1`, `b:2~${epochOf('b:2')}~0`])
  stream.cut()
})

t.test('a POST takes the messages a WebSocket client sends and answers in its body', async (t) => {
  const app = await streamApp(t, allowAll)
  const stream = await openStream(app, 'alice')
  const subscribed = await stream.post({ type: 'subscribe', id: 's1', room: 'work:1' })
  t.equal(subscribed.status, 200)
  t.match(subscribed.body, { type: 'subscribed', id: 's1', room: 'work:1', data: { seq: 0, recovered: false } })
  // Without an id, the answer comes back all the same, with no id of the server's.
  const pong = await stream.post({ type: 'ping' })
  t.same(pong.body, { type: 'pong' })
  await app.realtime.emit('work:1', thought(1))
  t.equal((await stream.next('agent:thought')).seq, 1)
  t.match(stream.lastId, /^work:1~.+~1$/)
  const gone = await stream.post({ type: 'unsubscribe', room: 'work:1' })
  t.same(gone.body, { type: 'unsubscribed', room: 'work:1' })
  // The id follows the rooms held even when the answer went to the POST.
  await stream.post({ type: 'subscribe', room: 'work:2' })
  await app.realtime.emit('work:2', thought(1))
  await stream.next('agent:thought')
  t.match(stream.lastId, /^work:2~.+~1$/)
  t.same(stream.frames, [], 'no answer went to the stream')
  stream.cut()
})

t.test('resume after a cut: Last-Event-ID replays what each room missed, in order, once', async (t) => {
  const app = await streamApp(t, allowAll)
  const first = await openStream(app, 'alice', { rooms: ['a:1', 'b:1'] })
  await first.collect('subscribed', 2)
  for (let n = 1; n <= 3; n++) {
    await app.realtime.emit('a:1', thought(n))
    await app.realtime.emit('b:1', thought(n))
  }
  await first.collect('agent:thought', 6)
  const lastId = first.lastId
  first.cut()
  for (let n = 4; n <= 6; n++) {
    await app.realtime.emit('a:1', thought(n))
    await app.realtime.emit('b:1', thought(n))
  }
  const again = await openStream(app, 'alice', { lastEventId: lastId })
  t.same(
    (await again.collect('subscribed', 2)).map((f) => f.data.recovered),
    [true, true]
  )
  const events = await again.collect('agent:thought', 6)
  const seqs = (list: typeof events, room: string) => list.filter((e) => e.room === room).map((e) => e.seq)
  t.same(seqs(events, 'a:1'), [4, 5, 6])
  t.same(seqs(events, 'b:1'), [4, 5, 6])
  // A second cut, resumed with ?lastEventId= this time (what a client without headers sends).
  const secondId = again.lastId
  again.cut()
  await app.realtime.emit('a:1', thought(7))
  const third = await openStream(app, 'alice', { lastEventId: secondId, inQuery: true })
  await third.collect('subscribed', 2)
  t.match(await third.next('agent:thought'), { room: 'a:1', seq: 7 })
  await app.realtime.emit('b:1', thought(7))
  t.match(await third.next('agent:thought'), { room: 'b:1', seq: 7 })
  t.same(third.frames, [], 'nothing twice')
  third.cut()
})

t.test('an id the history no longer covers answers recovered: false, with the snapshot', async (t) => {
  const app = await streamApp(t, { ...allowAll, history: { size: 2 }, snapshot: () => ({ fresh: true }) })
  const first = await openStream(app, 'alice', { rooms: ['a:1'] })
  await first.next('subscribed')
  await app.realtime.emit('a:1', thought(1))
  await first.next('agent:thought')
  const lastId = first.lastId
  first.cut()
  for (let n = 2; n <= 6; n++) await app.realtime.emit('a:1', thought(n))
  const again = await openStream(app, 'alice', { lastEventId: lastId })
  t.match(await again.next('subscribed'), { room: 'a:1', data: { recovered: false, seq: 6, snapshot: { fresh: true } } })
  again.cut()
})

t.test('a bad Last-Event-ID is a 400 before any stream byte', async (t) => {
  const app = await streamApp(t, allowAll)
  for (const id of ['a:1~e', 'a:1~e~x', 'a:1~e~1 a:1~e~2', 'a%ZZ~e~1']) {
    const stream = await openStream(app, 'alice', { lastEventId: id })
    t.equal(stream.response.status, 400, id)
    t.match(await stream.response.json(), { code: 'FST_REALTIME_BAD_EVENT_ID', message: /Bad Last-Event-ID/ })
  }
  const many = Array.from({ length: 3 }, (_, i) => `r:${i}~e~1`).join(' ')
  const app2 = await streamApp(t, { ...allowAll, limits: { roomsPerConnection: 2 } })
  const stream = await openStream(app2, 'alice', { lastEventId: many })
  t.equal(stream.response.status, 400)
})

t.test('the stream is refused like an upgrade: 401, 403 origin, 429 per user, 503 full, JSON bodies', async (t) => {
  const app = await streamApp(t, { ...allowAll, limits: { connectionsPerUser: 1, connections: 2 } })
  const none = await openStream(app, 'alice', { token: null })
  t.equal(none.response.status, 401)
  t.match(await none.response.json(), { code: 'FST_REALTIME_UNAUTHORIZED', message: 'Missing token' })
  const bad = await openStream(app, 'alice', { token: 'nope' })
  t.equal(bad.response.status, 401)
  const origin = await openStream(app, 'alice', { headers: { origin: 'https://evil.example' } })
  t.equal(origin.response.status, 403)
  const first = await openStream(app, 'alice')
  const second = await openStream(app, 'alice')
  t.equal(second.response.status, 429)
  const bob = await openStream(app, 'bob')
  const carol = await openStream(app, 'carol')
  t.equal(carol.response.status, 503)
  first.cut()
  bob.cut()
})

t.test('tickets: made with the bearer token, single use, expiring, never logged', async (t) => {
  const logs = logCapture()
  const app = await streamApp(t, { ...allowAll, sse: { ticketTtl: 200 } }, logs.fastify)
  const base = baseUrl(app)
  const issue = async (token: string | undefined) =>
    fetch(`${base}/ticket`, { method: 'POST', headers: token === undefined ? {} : { authorization: `Bearer ${token}` } })
  const refused = await issue(undefined)
  t.equal(refused.status, 401)
  const made = await issue(sign('alice'))
  t.equal(made.status, 200)
  t.equal(made.headers.get('cache-control'), 'no-store')
  const { ticket, expiresIn } = (await made.json()) as { ticket: string; expiresIn: number }
  t.equal(expiresIn, 200)
  const stream = await openStream(app, 'alice', { ticket, token: null })
  t.equal(stream.ready.data.userId, 'alice')
  const reused = await openStream(app, 'alice', { ticket, token: null })
  t.equal(reused.response.status, 401)
  t.match(await reused.response.json(), { message: 'Unknown, used or expired ticket' })
  const late = ((await (await issue(sign('alice'))).json()) as { ticket: string }).ticket
  await new Promise((resolve) => setTimeout(resolve, 250))
  const expired = await openStream(app, 'alice', { ticket: late, token: null })
  t.equal(expired.response.status, 401)
  stream.cut()
  t.notOk(logs.lines.join('').includes(ticket), 'no log line holds the ticket')
  t.notOk(logs.lines.join('').includes(late), 'no log line holds the expired ticket')
})

t.test('a POST to another user’s stream is refused, and one to no stream is a 404', async (t) => {
  const app = await streamApp(t, allowAll)
  const stream = await openStream(app, 'alice')
  const mallory = await stream.post({ type: 'subscribe', id: 'x', room: 'user:alice' }, sign('mallory'))
  t.equal(mallory.status, 403)
  t.match(mallory.body, { code: 'FST_REALTIME_NOT_YOUR_SESSION' })
  const anonymous = await stream.post({ type: 'ping' }, 'not-a-token')
  t.equal(anonymous.status, 401)
  const res = await fetch(`${baseUrl(app)}/sse/00000000-0000-0000-0000-000000000000`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sign('alice')}`, 'content-type': 'application/json' },
    body: '{"type":"ping"}'
  })
  t.equal(res.status, 404)
  t.match(await res.json(), { code: 'FST_REALTIME_NO_SESSION' })
  t.same(stream.frames, [], 'nothing reached the stream')
  stream.cut()
})

t.test('hostile input on the POST route: bad JSON, bad messages, oversize, flood', async (t) => {
  const app = await streamApp(t, { ...allowAll, limits: { maxPayload: 1024, messagesPerSecond: 1, burst: 3, maxRateLimited: 2 } })
  const stream = await openStream(app, 'alice')
  const notJson = await stream.post('{"type":')
  t.equal(notJson.status, 400)
  t.match(notJson.body, { type: 'error', data: { code: 'invalid_json' } })
  const proto = await stream.post('{"type":"ping","__proto__":{"x":1}}')
  t.match(proto.body, { type: 'error', data: { code: 'invalid_json' } })
  const unknown = await stream.post({ type: 'nope', id: 'u1' })
  t.equal(unknown.status, 400)
  t.match(unknown.body, { type: 'error', id: 'u1', data: { code: 'unknown_type' } })
  const big = await stream.post({ type: 'ping', pad: 'x'.repeat(2000) })
  t.equal(big.status, 413)
  // The bucket is empty now: the next ones are rate limited, then the stream is closed.
  const limited = await stream.post({ type: 'ping', id: 'p' })
  t.equal(limited.status, 429)
  t.match(limited.body, { type: 'error', id: 'p', data: { code: 'rate_limited' } })
  await stream.post({ type: 'ping' })
  const closed = await stream.post({ type: 'ping' })
  t.equal(closed.status, 410)
  await stream.closed()
  t.same(stream.closeEvent, { code: 4029, reason: 'rate limit exceeded' })
})

t.test('tickets waiting to be redeemed are bounded: past the bound a 503, and expired ones make room', async (t) => {
  const app = await streamApp(t, { ...allowAll, sse: { ticketTtl: 1000 }, limits: { connections: 2 } })
  const issue = () => fetch(`${baseUrl(app)}/ticket`, { method: 'POST', headers: { authorization: `Bearer ${sign('alice')}` } })
  t.equal((await issue()).status, 200)
  t.equal((await issue()).status, 200)
  const full = await issue()
  t.match({ status: full.status, body: await full.json() }, { status: 503, body: { code: 'FST_REALTIME_TICKETS_FULL' } })
  await new Promise((resolve) => setTimeout(resolve, 1100))
  t.equal((await issue()).status, 200)
})

t.test('a stream refused after its checks (a bad Last-Event-ID) gives its place back at once, on a kept-alive socket', async (t) => {
  const app = await streamApp(t, { ...allowAll, limits: { connections: 1 } })
  // One socket for every request, as a browser keeps one: a place held until that socket closes would fill the cap.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const get = (lastEventId: string) =>
    new Promise<number>((resolve, reject) => {
      const req = httpGet(`${baseUrl(app)}/sse`, {
        agent,
        headers: { authorization: `Bearer ${sign('alice')}`, 'last-event-id': lastEventId }
      })
      req.on('response', (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode as number))
      })
      req.on('error', reject)
    })
  t.same([await get('a~e~x'), await get('a~e~x'), await get('a~e~x')], [400, 400, 400], 'each refused for its id, not as full')
  const stream = await openStream(app, 'alice')
  t.equal(stream.ready.type, 'ready', 'the one place is free')
  stream.cut()
})

t.test('a stream whose checks finish as the server begins to close is refused with 503', async (t) => {
  const checking = latch()
  const held = latch()
  const app = await streamApp(t, {
    ...allowAll,
    subscriptions: async () => {
      checking.open()
      await held.done
      return []
    }
  })
  const pending = openStream(app, 'alice')
  await checking.done
  await app.realtime.close()
  held.open()
  const stream = await pending
  t.equal(stream.response.status, 503)
  t.match(await stream.response.json(), { code: 'FST_REALTIME_CLOSING' })
})

t.test('a ticket beside other query parameters: the rooms are kept, the ticket is taken out of the logged URL', async (t) => {
  const logs = logCapture()
  const app = await streamApp(t, allowAll, logs.fastify)
  const made = await fetch(`${baseUrl(app)}/ticket`, { method: 'POST', headers: { authorization: `Bearer ${sign('alice')}` } })
  const { ticket } = (await made.json()) as { ticket: string }
  const stream = await openStream(app, 'alice', { ticket, token: null, rooms: ['news'] })
  t.match(await stream.next('subscribed'), { room: 'news' })
  stream.cut()
  t.ok(
    logs.lines.some((line) => line.includes('/sse?room=news"')),
    'the URL logged keeps the room'
  )
  t.notOk(logs.lines.join('').includes(ticket), 'no log line holds the ticket')
})

t.test('an empty POST is a 400 invalid_json, and the stream goes on', async (t) => {
  const app = await streamApp(t, allowAll)
  const stream = await openStream(app, 'alice')
  const res = await fetch(`${stream.base}/sse/${stream.ready.data.connectionId}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stream.token}` }
  })
  t.equal(res.status, 400)
  t.match(await res.json(), { type: 'error', data: { code: 'invalid_json' } })
  t.match((await stream.post({ type: 'ping', id: 'p1' })).body, { type: 'pong', id: 'p1' })
  stream.cut()
})

t.test('a POST whose client went away before the answer: the answer comes on the stream instead', async (t) => {
  const asking = latch()
  const allowed = latch<boolean>()
  const app = await streamApp(t, {
    authorize: () => {
      asking.open()
      return allowed.done
    }
  })
  const stream = await openStream(app, 'alice')
  // The server sees the POST's end as its response closing unfinished.
  const abandoned = new Promise<void>((resolve) => {
    app.server.on('request', (req, res) => {
      if (req.method === 'POST') res.on('close', () => resolve())
    })
  })
  const abort = new AbortController()
  const post = fetch(`${stream.base}/sse/${stream.ready.data.connectionId}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stream.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'subscribe', id: 's1', room: 'slow' }),
    signal: abort.signal
  })
  await asking.done
  abort.abort()
  await t.rejects(post)
  await abandoned
  allowed.open(true)
  t.match(await stream.next('subscribed'), { id: 's1', room: 'slow' })
  stream.cut()
})

t.test('a server request reaches a stream, and its POSTed reply resolves it with a 204', async (t) => {
  const app = await streamApp(t, allowAll)
  const stream = await openStream(app, 'alice')
  const pending = app.realtime.request<{ optionId: string }>(stream.ready.data.connectionId, {
    type: 'hitl_request',
    data: { requestId: 'q1', question: 'Publish?', options: [{ id: 'yes', label: 'Yes' }] }
  })
  const request = await stream.next('hitl_request')
  const answered = await stream.post({ type: 'reply', id: request.id, data: { optionId: 'yes' } })
  t.same([answered.status, answered.text], [204, ''])
  t.same(await pending, { optionId: 'yes' })
  const again = await stream.post({ type: 'reply', id: request.id, data: { optionId: 'yes' } })
  t.match(again.body, { type: 'error', id: request.id, data: { code: 'unknown_request' } }, 'a second reply is told')
  stream.cut()
})
