import t from 'tap'
import WebSocket from 'ws'
import { until } from './helpers/client.js'
import { buildApp, connect, delay, latch, logCapture, refused, sign, TestClient, wsUrl } from './helpers/index.js'

t.test('ready tells the connection id, the user id, the heartbeat interval and the largest frame accepted', async (t) => {
  const app = await buildApp(t, { heartbeat: { interval: 12_000 }, limits: { maxPayload: 4096 } })
  const client = await connect(app, 'alice')
  t.match(client.ready, { type: 'ready', data: { userId: 'alice', heartbeatMs: 12_000, maxPayload: 4096 } })
  t.match(client.ready.data.connectionId, /^[0-9a-f-]{36}$/)
  t.same(Object.keys(client.ready), ['type', 'data'])
})

t.test('a client that does not answer pings is terminated and cleaned up; one that answers stays', async (t) => {
  const logs = logCapture('info')
  const app = await buildApp(t, { authorize: () => true, heartbeat: { interval: 80, timeout: 60 } }, { fastify: logs.fastify })
  const silentWs = new WebSocket(wsUrl(app), { headers: { authorization: `Bearer ${sign('zombie')}` }, autoPong: false })
  const silent = new TestClient(silentWs)
  await silent.next('ready')
  const healthy = await connect(app, 'alice')
  await silent.subscribe('r')
  await healthy.subscribe('r')
  const pending = app.realtime.request('r', { type: 'hitl_request', data: { requestId: 'h', question: '?' } }, { timeout: 5000 })
  await silent.next('hitl_request')
  const { code } = await silent.closed
  t.equal(code, 1006, 'terminated without a close frame')
  t.equal(app.realtime.stats().connections, 1)
  t.equal(app.realtime.stats().subscriptions, 1, 'its room membership is gone')
  const asked = await healthy.next('hitl_request')
  healthy.send({ type: 'reply', id: asked.id, data: 'ok' })
  t.equal(await pending, 'ok')
  // Three more pings answered (every 80 ms, reaped after 60 ms without a pong): well past the point of reaping.
  let pings = 0
  healthy.ws.on('ping', () => pings++)
  await until(() => pings >= 3, 5000, 'three more pings')
  t.same(await healthy.call({ type: 'ping', id: 'still' }), { type: 'pong', id: 'still' })
  t.equal(healthy.closeCode, undefined, 'the client that answers pings is still connected')
  t.ok(logs.records().some((r) => r.msg === 'realtime connection terminated' && r.why === 'heartbeat timeout' && r.userId === 'zombie'))
})

t.test('a stall right after a ping does not reap a connection whose pong arrived during it', async (t) => {
  const app = await buildApp(t, { heartbeat: { interval: 300, timeout: 100 } })
  // The client lives in another process, so it answers the ping while this one is blocked.
  const script = `const WebSocket = require('ws')
const ws = new WebSocket(process.argv[1], { headers: { authorization: 'Bearer ' + process.argv[2] } })
ws.on('message', (d) => { if (String(d).includes('"ready"')) console.log('ready') })
ws.on('close', (code) => { console.log('closed ' + code); process.exit(0) })`
  const { spawn } = await import('node:child_process')
  const child = spawn(process.execPath, ['-e', script, wsUrl(app), sign('far')], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  const deadline = Date.now() + 30_000
  while (!out.includes('ready') && Date.now() < deadline) await delay(10)
  const [server] = [...app.websocketServer.clients]
  const ping = (server as WebSocket).ping.bind(server)
  let stalls = 0
  ;(server as WebSocket).ping = (...args: Parameters<WebSocket['ping']>) => {
    ping(...args)
    // Once the reap timer is armed, block the loop past its timeout: the pong arrives meanwhile, unread.
    if (stalls++ < 2) {
      setImmediate(() => {
        const until = Date.now() + 250
        while (Date.now() < until) {
          // a stall
        }
      })
    }
  }
  while (stalls < 2 && Date.now() < deadline) await delay(20)
  await delay(400)
  t.equal(app.realtime.stats().connections, 1, 'still connected after two stalled heartbeats')
  t.notMatch(out, /closed/)
})

t.test('a timeout longer than the interval still reaps a dead client', async (t) => {
  const app = await buildApp(t, { heartbeat: { interval: 40, timeout: 100 } })
  const silent = new TestClient(new WebSocket(wsUrl(app), { headers: { authorization: `Bearer ${sign('zombie')}` }, autoPong: false }))
  await silent.next('ready')
  t.equal((await silent.closed).code, 1006)
})

t.test('a request to a reaped connection is rejected', async (t) => {
  const app = await buildApp(t, { heartbeat: { interval: 50, timeout: 50 } })
  const silent = new TestClient(new WebSocket(wsUrl(app), { headers: { authorization: `Bearer ${sign('zombie')}` }, autoPong: false }))
  const ready = await silent.next('ready')
  await t.rejects(app.realtime.request(ready.data.connectionId, { type: 'hitl_request', data: { requestId: 'x', question: '?' } }), {
    code: 'FST_REALTIME_REQUEST_DISCONNECTED'
  })
})

t.test('a token that expires while connected closes the connection with 4001', async (t) => {
  const app = await buildApp(t)
  // At least a whole second ahead (exp counts whole seconds), so a slow upgrade is not already past it.
  const client = await connect(app, 'alice', { token: sign('alice', { exp: Math.ceil(Date.now() / 1000) + 1 }) })
  const { code, reason } = await client.closed
  t.equal(code, 4001)
  t.equal(reason, 'token expired')
})

t.test('a fresh token sent with auth before exp keeps the connection open', async (t) => {
  const app = await buildApp(t)
  const exp = Math.ceil(Date.now() / 1000) + 1
  const client = await connect(app, 'alice', { token: sign('alice', { exp }) })
  await client.call({ type: 'auth', data: { token: sign('alice') } })
  // Past the first token's exp (whole seconds), with a margin; the pong below is the later marker.
  await delay(exp * 1000 + 200 - Date.now())
  t.equal(client.closeCode, undefined)
  t.same(await client.call({ type: 'ping', id: 'p' }), { type: 'pong', id: 'p' })
})

t.test('tokenExpiryGrace lets a connection outlive exp by that much', async (t) => {
  const app = await buildApp(t, { tokenExpiryGrace: 1500 })
  const exp = Math.floor(Date.now() / 1000) + 1
  const client = await connect(app, 'alice', { token: sign('alice', { exp }) })
  const { code } = await client.closed
  t.equal(code, 4001)
  t.ok(Date.now() >= exp * 1000 + 1400, 'closed after exp + grace')
})

t.test('a token far in the future does not overflow the expiry timer', async (t) => {
  const app = await buildApp(t)
  const client = await connect(app, 'alice', { token: sign('alice', { exp: Math.floor(Date.now() / 1000) + 60 * 86_400 }) })
  await delay(50)
  t.same(await client.call({ type: 'ping', id: 'p' }), { type: 'pong', id: 'p' })
})

t.test('app.close() closes every client with 1001, stops every timer and leaves nothing open', async (t) => {
  const logs = logCapture('info')
  const app = await buildApp(t, { authorize: () => true }, { fastify: logs.fastify })
  const clients = await Promise.all(['a', 'b', 'c'].map((u) => connect(app, u)))
  await clients[0]?.subscribe('r')
  const pending = t.rejects(app.realtime.request('r', { type: 'hitl_request', data: { requestId: 'z', question: '?' } }), {
    code: 'FST_REALTIME_REQUEST_DISCONNECTED'
  })
  const started = Date.now()
  await app.close()
  const closes = await Promise.all(clients.map((c) => c.closed))
  t.same(
    closes.map((c) => c.code),
    [1001, 1001, 1001]
  )
  t.equal(closes[0]?.reason, 'server shutting down')
  t.ok(Date.now() - started < 1000, 'within a second')
  await pending
  t.same(app.realtime.stats(), {
    connections: 0,
    rooms: 0,
    subscriptions: 0,
    messagesIn: 1,
    messagesOut: 3 + 1 + 1,
    errors: 0,
    dropped: 0,
    pendingRequests: 0,
    transports: { websocket: 0, sse: 0 }
  })
  // app.close() does not wait for every close handshake; the server's log lines follow the clients' close.
  const closedLogs = () => logs.records().filter((r) => r.msg === 'realtime connection closed')
  for (let i = 0; i < 100 && closedLogs().length < 3; i++) await delay(10)
  const closed = closedLogs()
  t.equal(closed.length, 3)
  t.match(closed[0], { code: 1001, connectionId: /./, userId: /^[abc]$/ })
})

t.test('realtime.close() closes every connection with 1001 and refuses new upgrades with 503', async (t) => {
  const app = await buildApp(t)
  const client = await connect(app)
  await app.realtime.close()
  t.equal((await client.closed).code, 1001)
  const res = await refused(app)
  t.equal(res.status, 503)
  t.equal(res.body.code, 'FST_REALTIME_CLOSING')
})

t.test('a client closing normally is removed and logged with its code', async (t) => {
  const logs = logCapture('info')
  const app = await buildApp(t, {}, { fastify: logs.fastify })
  const client = await connect(app, 'alice')
  await client.subscribe('user:alice')
  client.ws.close(4321, 'tab closed')
  await client.closed
  await delay(20)
  t.equal(app.realtime.stats().connections, 0)
  t.equal(app.realtime.stats().subscriptions, 0)
  t.ok(logs.records().some((r) => r.msg === 'realtime connection closed' && r.code === 4321 && r.reason === 'tab closed'))
  t.ok(logs.records().some((r) => r.msg === 'realtime connection opened' && r.userId === 'alice'))
})

t.test('a client that stops reading is closed as a slow consumer (4008) and the others are not held up', async (t) => {
  const app = await buildApp(t, { authorize: () => true, limits: { bufferedBytes: 256 * 1024 } })
  const slow = await connect(app, 'slow')
  const fast = await connect(app, 'fast')
  await slow.subscribe('r')
  await fast.subscribe('r')
  const socket = (slow.ws as unknown as { _socket: import('node:net').Socket })._socket
  socket.pause()
  // More than the loopback socket buffers of both ends hold, so the server's own queue must grow.
  const big = 'x'.repeat(60 * 1024)
  // The reading client reads each batch before the next is sent: it never falls behind by more than 120 KB.
  let received = 0
  for (let batch = 0; batch < 200 && app.realtime.stats().connections === 2; batch++) {
    for (let i = 0; i < 2; i++) await app.realtime.emit('r', { type: 'agent:thought', data: { runId: 'r', content: big } })
    received += (await fast.collect('agent:thought', 2)).length
  }
  t.equal(fast.closeCode, undefined, 'the reading client is still connected')
  t.ok(received >= 2, `the reading client got every event (${received})`)
  t.equal(app.realtime.stats().connections, 1, 'the slow client is gone')
  socket.resume()
  const { code } = await slow.closed
  t.ok(code === 4008 || code === 1006, `the slow client saw 4008 or, as it never read the close frame, 1006 (${code})`)
  t.equal(app.realtime.stats().connections, 1)
})

t.test('past limits.connectionsPerUser an upgrade gets 429, past limits.connections 503, before any socket opens', async (t) => {
  const logs = logCapture('info')
  const app = await buildApp(t, { limits: { connectionsPerUser: 2, connections: 3 } }, { fastify: logs.fastify })
  const a1 = await connect(app, 'alice')
  await connect(app, 'alice')
  const third = await refused(app, 'alice')
  t.equal(third.status, 429)
  t.same(third.body, {
    statusCode: 429,
    code: 'FST_REALTIME_TOO_MANY_CONNECTIONS',
    error: 'Too Many Requests',
    message: 'Too many connections for this user (at most 2)'
  })
  await connect(app, 'bob')
  const full = await refused(app, 'carol')
  t.equal(full.status, 503)
  t.equal(full.body.code, 'FST_REALTIME_SERVER_FULL')
  t.equal(app.realtime.stats().connections, 3)
  await a1.close()
  await delay(20)
  t.equal((await connect(app, 'carol')).ready.data.userId, 'carol', 'a slot freed by a close is usable again')
  t.ok(logs.records().some((r) => r.msg === 'realtime upgrade refused: too many connections for the user' && r.userId === 'alice'))
  t.ok(logs.records().some((r) => r.msg === 'realtime upgrade refused: connection limit reached'))
})

t.test('app.close() does not wait for a client that never answers the close frame', async (t) => {
  const app = await buildApp(t)
  const stuck = await connect(app, 'stuck')
  const socket = (stuck.ws as unknown as { _socket: import('node:net').Socket })._socket
  socket.pause()
  const started = Date.now()
  await app.close()
  t.ok(
    Date.now() - started < 1500,
    `app.close() took ${Date.now() - started} ms: at most the 1 s grace before stuck sockets are terminated`
  )
  socket.resume()
  const { code } = await stuck.closed
  t.ok(code === 1001 || code === 1006, `the stuck client was closed (${code})`)
})

t.test('an upgrade admitted just before realtime.close() is closed with 1001, not kept', async (t) => {
  const gate = latch()
  const reached = latch()
  const app = await buildApp(
    t,
    {},
    {
      before: (app) =>
        app.addHook('preHandler', async () => {
          reached.open()
          await gate.done
        })
    }
  )
  const ws = new WebSocket(wsUrl(app), { headers: { authorization: `Bearer ${sign('late')}` } })
  const late = new TestClient(ws)
  await reached.done
  await app.realtime.close()
  gate.open()
  t.equal((await late.closed).code, 1001)
  t.equal(app.realtime.stats().connections, 0)
})

t.test('connection.close() fits a long reason into a close frame and survives a code it may not send', async (t) => {
  const { Type } = await import('../src/index.js')
  const app = await buildApp(t)
  app.realtime.handle('ban', Type.Object({ code: Type.Integer() }), ({ connection, data }) => {
    connection.close(data.code, `banned: ${'é'.repeat(200)}`)
  })
  const banned = await connect(app, 'mallory')
  banned.send({ type: 'ban', data: { code: 4503 } })
  const { code, reason } = await banned.closed
  t.equal(code, 4503)
  t.ok(Buffer.byteLength(reason) <= 123, `the reason was cut to ${Buffer.byteLength(reason)} bytes`)
  const odd = await connect(app, 'mallory')
  odd.send({ type: 'ban', data: { code: 1005 } })
  t.equal((await odd.closed).code, 1006, 'a code no close frame may carry ends the connection all the same')
  await delay(20)
  t.equal(app.realtime.stats().connections, 0, 'nothing is left open and untracked')
})

t.test('one event larger than limits.bufferedBytes goes to an idle subscriber instead of disconnecting it', async (t) => {
  const app = await buildApp(t, { authorize: () => true, limits: { bufferedBytes: 64 * 1024 } })
  const client = await connect(app)
  await client.subscribe('r')
  await app.realtime.emit('r', { type: 'agent:result', data: { runId: 'r', output: 'x'.repeat(200 * 1024) } })
  t.equal((await client.next('agent:result')).data.output.length, 200 * 1024)
  t.equal(client.closeCode, undefined)
})

t.test('request() accepts Infinity (no timer) and refuses a timeout a timer cannot hold', async (t) => {
  const app = await buildApp(t)
  const client = await connect(app)
  const id = client.ready.data.connectionId
  const question = { type: 'hitl_request' as const, data: { requestId: 'q', question: '?' } }
  const forever = app.realtime.request(id, question, { timeout: Number.POSITIVE_INFINITY })
  const asked = await client.next('hitl_request')
  await delay(30)
  client.send({ type: 'reply', id: asked.id, data: 'eventually' })
  t.equal(await forever, 'eventually')
  for (const timeout of [0, -1, 1.5, 2 ** 31, Number.NaN]) {
    t.throws(() => app.realtime.request(id, question, { timeout }), {
      code: 'FST_REALTIME_INVALID_OPTION',
      message: /request timeout must be/
    })
  }
})
