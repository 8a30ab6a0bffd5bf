import t from 'tap'
import WebSocket from 'ws'
import { backoff, createClient, type RealtimeClientError } from '../src/client/index.js'
import { RealtimeError, Type } from '../src/index.js'
import { scriptedServer, sdk, until } from './helpers/client.js'
import { buildApp, delay, sign } from './helpers/index.js'

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r', content } })

t.test('connects with the token as a subprotocol, reports its states, and receives typed events', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const states: string[] = []
  const client = sdk(t, app, { token: sign('alice') })
  client.onStateChange((s, p) => states.push(`${p}>${s}`))
  t.equal(client.state, 'connecting')
  await until(() => client.state === 'open')
  t.equal(client.userId, 'alice')
  t.match(client.connectionId, /^[0-9a-f-]{36}$/)
  const events: unknown[] = []
  const byType: unknown[] = []
  const infos: unknown[] = []
  const sub = client.subscribe('workflow:1', (e) => events.push(e), { onSubscribed: (info) => infos.push(info) })
  const off = client.on('agent:thought', (e) => byType.push(e.data.content))
  await until(() => infos.length === 1)
  t.match(infos[0], { recovered: false, seq: 0, epoch: /\w+/ })
  await app.realtime.emit('workflow:1', thought('one'))
  await app.realtime.emit('workflow:1', thought('two'), { volatile: true })
  await until(() => events.length === 2)
  t.match(events, [{ type: 'agent:thought', room: 'workflow:1', seq: 1, data: { content: 'one' } }, { data: { content: 'two' } }])
  t.same(byType, ['one', 'two'])
  t.equal(sub.seq, 1)
  off()
  sub.unsubscribe()
  sub.unsubscribe()
  // A later subscribe is answered after the unsubscribe was handled, and its event is the marker: an event of the
  // room left would have arrived before it.
  const markers: unknown[] = []
  await new Promise<void>((resolve) => client.subscribe('workflow:2', (e) => markers.push(e), { onSubscribed: () => resolve() }))
  await app.realtime.emit('workflow:1', thought('three'))
  await app.realtime.emit('workflow:2', thought('marker'))
  await until(() => markers.length === 1)
  t.equal(events.length, 2, 'nothing after unsubscribe')
  t.same(byType, ['one', 'two'], 'nor to a handler removed')
  t.same(states, ['connecting>open'])
})

t.test('send resolves with the ack, rejects with the error code, and times out', async (t) => {
  const app = await buildApp(t)
  app.realtime.handle('add', Type.Object({ a: Type.Number(), b: Type.Number() }), ({ data }) => data.a + data.b)
  app.realtime.handle('fail', Type.Object({}), () => {
    throw new RealtimeError('nope', 'not today')
  })
  app.realtime.handle('slow', Type.Object({}), () => delay(200))
  const client = sdk(t, app, { token: sign('alice') })
  t.equal(await client.send('add', { a: 2, b: 3 }), 5, 'queued before open, sent once ready')
  await t.rejects(client.send('fail', {}), { name: 'RealtimeClientError', code: 'nope', message: 'not today' })
  await t.rejects(client.send('add', { a: 'x' } as never), { code: 'invalid_message' })
  await t.rejects(client.send('slow', {}, { timeout: 30 }), { code: 'timeout', message: 'no ack for "slow" within 30 ms' })
  await delay(250)
  t.equal(await client.send('add', { a: 1, b: 1 }), 2, 'the late ack of the timed-out message is ignored')
})

t.test('onRequest answers server requests; a throwing handler declines; an unknown type is refused', async (t) => {
  const app = await buildApp(t)
  const client = sdk(t, app, { token: sign('alice') })
  client.onRequest('hitl_request', (data) => ({ optionId: data.options?.[0]?.id }))
  await until(() => client.state === 'open')
  const id = client.connectionId as string
  const question = { requestId: 'q', question: 'Go?', options: [{ id: 'go', label: 'Go' }] }
  t.same(await app.realtime.request(id, { type: 'hitl_request', data: question }), { optionId: 'go' })
  const off = client.onRequest('hitl_request', async () => {
    throw Object.assign(new Error('the user closed the tab'), { code: 'dismissed' })
  })
  await t.rejects(app.realtime.request(id, { type: 'hitl_request', data: question }), {
    code: 'FST_REALTIME_REQUEST_REJECTED',
    message: /dismissed: the user closed the tab/
  })
  client.onRequest('hitl_request', () => {
    throw 'plain string'
  })
  await t.rejects(app.realtime.request(id, { type: 'hitl_request', data: question }), { message: /declined: plain string/ })
  // A dialog cancelled with a bare reject(): nothing to read a code or a message from.
  client.onRequest('hitl_request', () => Promise.reject())
  await t.rejects(app.realtime.request(id, { type: 'hitl_request', data: question }), { message: /declined: undefined/ })
  off()
  await t.rejects(app.realtime.request(id, { type: 'agent:thought', data: { runId: 'r', content: 'x' } }), {
    message: /unhandled: no handler for "agent:thought"/
  })
  client.onRequest('hitl_request', () => undefined)
  t.equal(await app.realtime.request(id, { type: 'hitl_request', data: question }), null)
})

t.test('after a server-side disconnect it reconnects, resubscribes from its last seq and gets each missed event once', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = sdk(t, app, { token: sign('alice') })
  const seqs: number[] = []
  const infos: Array<{ recovered: boolean }> = []
  client.subscribe('r', (e) => seqs.push(e.seq as number), { onSubscribed: (i) => infos.push(i) })
  await until(() => infos.length === 1)
  await app.realtime.emit('r', thought('1'))
  await until(() => seqs.length === 1)
  const states: string[] = []
  client.onStateChange((s) => states.push(s))
  app.realtime.connection(client.connectionId as string)?.close(1012, 'restart')
  await app.realtime.emit('r', thought('2'))
  await app.realtime.emit('r', thought('3'))
  await until(() => seqs.length === 3)
  await app.realtime.emit('r', thought('4'))
  await until(() => seqs.length === 4)
  t.same(seqs, [1, 2, 3, 4])
  t.same(states, ['reconnecting', 'open'])
  t.same(
    infos.map((i) => i.recovered),
    [false, true]
  )
})

t.test('when the history no longer covers the gap, the application gets recovered: false and the snapshot', async (t) => {
  const app = await buildApp(t, { authorize: () => true, history: { size: 2 }, snapshot: ({ room }) => ({ room, state: 'fresh' }) })
  // Away for a fixed 300 ms, so the events below are certainly missed.
  const client = sdk(t, app, { token: sign('alice'), reconnect: { initialDelay: 300 }, random: () => 0.999 })
  const infos: any[] = []
  const seqs: number[] = []
  client.subscribe('r', (e) => seqs.push(e.seq as number), { onSubscribed: (i) => infos.push(i) })
  await until(() => infos.length === 1)
  app.realtime.connection(client.connectionId as string)?.close(1012)
  await until(() => client.state === 'reconnecting')
  t.equal(client.connectionId, undefined)
  for (let i = 1; i <= 5; i++) await app.realtime.emit('r', thought(String(i)))
  await until(() => infos.length === 2)
  t.match(infos[1], { recovered: false, seq: 5, snapshot: { room: 'r', state: 'fresh' } })
  await app.realtime.emit('r', thought('6'))
  await until(() => seqs.length === 1)
  t.same(seqs, [6], 'the page redraws from the snapshot and continues live')
})

t.test('the token function is called on every (re)connect; an expired token is refreshed, not looped on', async (t) => {
  const app = await buildApp(t)
  const issued: string[] = []
  const expired = sign('alice', { exp: Math.floor(Date.now() / 1000) - 60 })
  const client = sdk(t, app, {
    token: async () => {
      const token = issued.length === 1 ? expired : sign('alice')
      issued.push(token)
      return token
    }
  })
  await until(() => client.state === 'open')
  t.equal(issued.length, 1)
  app.realtime.connection(client.connectionId as string)?.close(4001, 'token expired')
  await until(() => client.state === 'open' && issued.length >= 3)
  t.equal(issued.length, 3, 'the expired token was refused once; the next call brought a fresh one')
})

t.test('a token function that fails is retried after the backoff', async (t) => {
  const app = await buildApp(t)
  let calls = 0
  const client = sdk(t, app, {
    token: () => {
      calls++
      if (calls === 1) throw new Error('auth service down')
      return sign('alice')
    }
  })
  await until(() => client.state === 'open')
  t.equal(calls, 2)
})

t.test('a token about to expire is refreshed with auth before the server would close the connection', async (t) => {
  const app = await buildApp(t)
  // `exp` counts whole seconds, so a token "valid for 5 s" has 4 to 5 s left: with refreshBeforeExpiry 2 the client
  // sends the new one at least 1.5 s before the server would close, a margin that a loaded machine does not eat.
  const expiries: number[] = []
  const client = sdk(t, app, {
    refreshBeforeExpiry: 2,
    token: () => {
      const exp = Math.floor(Date.now() / 1000) + 5
      expiries.push(exp)
      return sign('alice', { exp })
    }
  })
  await until(() => client.state === 'open', 10_000, 'the client to open')
  const first = client.connectionId
  await until(() => expiries.length >= 2, 10_000, 'the token function to be asked again')
  // Past the first token's exp (and the server's timer for it, which fires before this poll's later one).
  const firstExpiry = (expiries[0] as number) * 1000
  await until(() => Date.now() > firstExpiry + 200, 10_000, 'the first token to expire')
  t.equal(client.connectionId, first, 'still the same connection past the first exp')
  t.ok(app.realtime.connection(first as string) !== undefined, 'the server still holds it')
})

t.test('a close code that forbids reconnecting ends in closed; so does running out of attempts', async (t) => {
  const app = await buildApp(t)
  const client = sdk(t, app, { token: sign('alice') })
  await until(() => client.state === 'open')
  app.realtime.connection(client.connectionId as string)?.close(1008, 'policy')
  await until(() => client.state === 'closed')
  await t.rejects(client.send('x', {}), { code: 'closed' })

  const { url } = await scriptedServer(t, (socket) => socket.close(1011))
  const states: string[] = []
  const limited = sdk(t, url, { reconnect: { initialDelay: 5, maxDelay: 10, maxAttempts: 2 } })
  limited.onStateChange((s) => states.push(s))
  await until(() => limited.state === 'closed')
  t.same(states, ['reconnecting', 'closed'])
  const never = sdk(t, url, { reconnect: false })
  await until(() => never.state === 'closed')
})

t.test('a silent server is detected by the watchdog and the socket replaced', async (t) => {
  const server = await scriptedServer(t, (socket) => {
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 40 } }))
  })
  const client = sdk(t, server.url, { heartbeatTimeout: 40 })
  await until(() => client.state === 'open')
  await until(() => client.state === 'reconnecting', 2000, 'the watchdog')
  await until(() => server.connections() >= 2, 2000, 'a new socket')
})

t.test('a silent server is also replaced when the socket has no terminate() (as in browsers)', async (t) => {
  const server = await scriptedServer(t, (socket) => {
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 40 } }))
  })
  class BrowserLike extends WebSocket {
    override terminate = undefined as never
  }
  const client = sdk(t, server.url, { heartbeatTimeout: 40, WebSocket: BrowserLike as never })
  await until(() => client.state === 'open')
  await until(() => server.connections() >= 2, 2000, 'a new socket')
})

t.test('duplicates are dropped, a gap asks for the missing events, batched frames are read', async (t) => {
  const subscribes: any[] = []
  const server = await scriptedServer(t, (socket, received) => {
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 10_000 } }))
    socket.on('message', () => {
      const last = received[received.length - 1] as any
      if (last.type !== 'subscribe') return
      subscribes.push(last)
      if (subscribes.length > 1) return
      const ev = (seq: number) => ({ type: 'agent:thought', room: 'r', seq, data: { runId: 'r', content: String(seq) }, ts: 'x' })
      socket.send(JSON.stringify({ type: 'subscribed', id: last.id, room: 'r', data: { seq: 0, epoch: 'e1', recovered: false } }))
      socket.send(JSON.stringify([ev(1), ev(2), ev(2)]))
      socket.send(JSON.stringify(ev(4)))
      socket.send(JSON.stringify(ev(5)))
      socket.send(JSON.stringify(ev(6)))
    })
  })
  const client = sdk(t, server.url)
  const seqs: number[] = []
  client.subscribe('r', (e) => seqs.push(e.seq as number))
  await until(() => subscribes.length === 2)
  await delay(30)
  t.equal(subscribes.length, 2, 'one resubscribe for the gap, not one per later event')
  t.same(seqs, [1, 2], 'the duplicate 2 and the out-of-order 4 were not delivered')
  t.same(subscribes[1].data, { since: 2, epoch: 'e1' }, 'it asked for everything after 2')
})

t.test('rooms the server joined are followed, and not resubscribed after a reconnect; a refused subscribe reports its error', async (t) => {
  const app = await buildApp(t)
  const client = sdk(t, app, { token: sign('alice') })
  const seen: string[] = []
  client.on('agent:thought', (e) => seen.push(`${e.room}:${e.data.content}`))
  await until(() => client.state === 'open')
  await app.realtime.join(client.connectionId as string, 'team:1')
  await delay(20)
  await app.realtime.emit('team:1', thought('hello'))
  await until(() => seen.length === 1)
  t.same(seen, ['team:1:hello'])
  await app.realtime.leave(client.connectionId as string, 'team:1')
  await delay(20)
  await app.realtime.emit('team:1', thought('after leave'))
  const errors: RealtimeClientError[] = []
  client.subscribe('workflow:secret', undefined, { onError: (e) => errors.push(e) })
  await until(() => errors.length === 1)
  t.match(errors[0], { code: 'forbidden' })
  // Not remembered: what the server restores itself is tested in memberships.test.ts; here, the client asks nothing.
  await app.realtime.join(client.connectionId as string, 'team:2', { remember: false })
  await delay(20)
  app.realtime.connection(client.connectionId as string)?.close(1012)
  await until(() => client.state === 'open' && app.realtime.stats().connections === 1)
  await delay(30)
  t.equal(app.realtime.stats().subscriptions, 0, 'neither the refused nor the server-joined rooms were resubscribed')
  t.same(seen, ['team:1:hello'])
})

t.test('close() stops everything: state closed, pending acks rejected, no timer left', async (t) => {
  const app = await buildApp(t)
  app.realtime.handle('never', Type.Object({}), () => new Promise(() => {}))
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const client = createClient({
    url: `ws://127.0.0.1:${(app.server.address() as any).port}/ws`,
    WebSocket: WebSocket as never,
    token: sign('a')
  })
  await until(() => client.state === 'open')
  const pending = client.send('never', {})
  client.close()
  client.close()
  await t.rejects(pending, { code: 'closed' })
  t.equal(client.state, 'closed')
  await delay(20)
  t.ok(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length <= before, 'no timer of the client is left')
})

t.test('messages sent while reconnecting are queued and delivered once the connection is back', async (t) => {
  const app = await buildApp(t)
  const got: number[] = []
  app.realtime.handle('note', Type.Object({ n: Type.Integer() }), ({ data }) => {
    got.push(data.n)
    return data.n
  })
  const client = sdk(t, app, { token: sign('alice'), reconnect: { initialDelay: 200 }, random: () => 0.999 })
  await until(() => client.state === 'open')
  app.realtime.connection(client.connectionId as string)?.close(1012)
  await until(() => client.state === 'reconnecting')
  const acks = await Promise.all([client.send('note', { n: 1 }), client.send('note', { n: 2 })])
  t.same(acks, [1, 2])
  t.same(got, [1, 2])
})

t.test('createClient refuses a missing WebSocket implementation and a bad URL', async (t) => {
  const saved = (globalThis as any).WebSocket
  ;(globalThis as any).WebSocket = undefined
  t.teardown(() => {
    ;(globalThis as any).WebSocket = saved
  })
  t.throws(() => createClient({ url: 'ws://localhost/ws', transports: ['websocket'] }), {
    name: 'TypeError',
    message: /pass `WebSocket` from the "ws" package/
  })
  t.throws(() => createClient({ url: 'http://localhost/ws', WebSocket: WebSocket as never }), { message: /ws:\/\/ or wss:\/\// })
})

t.test('backoff is exponential with full jitter, capped', async (t) => {
  t.equal(
    backoff(0, {}, () => 0.999),
    499
  )
  t.equal(
    backoff(3, {}, () => 0.5),
    2000
  )
  t.equal(
    backoff(10, {}, () => 1 - 1e-9),
    9999,
    'capped at maxDelay'
  )
  t.equal(
    backoff(5, { initialDelay: 100, maxDelay: 1000, factor: 3 }, () => 0.5),
    500
  )
  t.equal(
    backoff(2, {}, () => 0),
    0,
    'full jitter reaches zero'
  )
  const spread = new Set(Array.from({ length: 200 }, () => backoff(4)))
  t.ok(spread.size > 100, 'real randomness spreads the delays')
})

t.test('an ack in flight when the connection drops is rejected as disconnected', async (t) => {
  const app = await buildApp(t)
  // The handler answers only after the drop, however slow the machine: the ack is in flight, not raced by a delay.
  let handling = false
  let finish = () => {}
  const dropped = new Promise<void>((resolve) => {
    finish = resolve
  })
  t.teardown(finish)
  app.realtime.handle('slow', Type.Object({}), async () => {
    handling = true
    await dropped
  })
  const client = sdk(t, app, { token: sign('alice') })
  await until(() => client.state === 'open')
  const pending = client.send('slow', {})
  await until(() => handling, 10_000, 'the handler to run')
  app.realtime.connection(client.connectionId as string)?.close(1012)
  await t.rejects(pending, { code: 'disconnected', message: 'the connection was lost before the ack' })
  await until(() => client.state === 'open')
})

t.test('a quiet but healthy server answers the watchdog ping and keeps the connection', async (t) => {
  // Intervals of 250 ms: a loaded machine's stalls stay shorter, so a late-read pong cannot pass for a silent server.
  const app = await buildApp(t, { heartbeat: { interval: 250, timeout: 5000 } })
  const client = sdk(t, app, { token: sign('alice'), heartbeatTimeout: 250 })
  await until(() => client.state === 'open')
  const id = client.connectionId
  await delay(2600)
  t.equal(client.connectionId, id, 'the same connection after ten silent intervals')
  t.ok(app.realtime.stats().messagesIn >= 3, 'the client pinged while the server was quiet')
})

t.test('a failing token refresh leaves the connection to expire (4001) and reconnect with a new token', async (t) => {
  const app = await buildApp(t)
  let calls = 0
  const client = sdk(t, app, {
    refreshBeforeExpiry: 1,
    token: () => {
      calls++
      if (calls === 2) throw new Error('refresh endpoint down')
      return sign('alice', { exp: Math.floor(Date.now() / 1000) + 2 })
    }
  })
  await until(() => client.state === 'open')
  const first = client.connectionId
  await until(() => client.state === 'open' && client.connectionId !== first && client.connectionId !== undefined, 5000, 'a new connection')
  t.ok(calls >= 3)
})

t.test('an opaque token (not a JWT) is sent as it is and never refreshed', async (t) => {
  const seen: string[] = []
  const server = await scriptedServer(t, (socket) => {
    seen.push(socket.protocol)
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 10_000 } }))
  })
  let calls = 0
  const client = sdk(t, server.url, {
    token: () => {
      calls++
      return 'opaque-session-token'
    }
  })
  await until(() => client.state === 'open')
  await delay(50)
  t.equal(calls, 1)
  const noExp = sdk(t, server.url, { token: () => sign('alice', { exp: undefined }) })
  await until(() => noExp.state === 'open')
})

t.test('close() while the token function is pending opens no socket', async (t) => {
  const server = await scriptedServer(t, () => {})
  const client = sdk(t, server.url, { token: () => delay(50).then(() => sign('alice')) })
  client.close()
  await delay(100)
  t.equal(server.connections(), 0)
  t.equal(client.state, 'closed')
})

t.test('frames for rooms it does not follow and errors without a pending id are ignored', async (t) => {
  const server = await scriptedServer(t, (socket) => {
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 10_000 } }))
    socket.send(JSON.stringify({ type: 'agent:thought', room: 'elsewhere', seq: 1, data: { runId: 'r', content: 'x' }, ts: 't' }))
    socket.send(JSON.stringify({ type: 'error', data: { code: 'rate_limited', message: 'slow down' } }))
    socket.send(JSON.stringify({ type: 'error', id: 'c999', data: { code: 'unknown', message: 'late' } }))
    socket.send(JSON.stringify({ type: 'unsubscribed', id: 'c1', room: 'r' }))
    socket.send(JSON.stringify({ type: 'pong' }))
  })
  const client = sdk(t, server.url)
  const seen: unknown[] = []
  client.on('agent:thought', (e) => seen.push(e))
  await until(() => client.state === 'open')
  await delay(30)
  t.same(seen, [])
  t.equal(client.state, 'open')
})

t.test('a message queued across a failed reconnect attempt is sent once a connection succeeds', async (t) => {
  const app = await buildApp(t)
  app.realtime.handle('note', Type.Object({}), () => 'noted')
  let calls = 0
  const client = sdk(t, app, {
    reconnect: { initialDelay: 100 },
    random: () => 0.999,
    token: () => (++calls === 2 ? 'refused-token' : sign('alice'))
  })
  await until(() => client.state === 'open')
  app.realtime.connection(client.connectionId as string)?.close(1012)
  await until(() => client.state === 'reconnecting')
  const ack = client.send('note', {})
  t.equal(await ack, 'noted')
  t.equal(calls, 3, 'one refused attempt, then a good one')
})

t.test('close() while the token function is failing stays closed; without reconnect a failing token function ends it', async (t) => {
  const server = await scriptedServer(t, () => {})
  const client = sdk(t, server.url, { token: () => delay(40).then(() => Promise.reject(new Error('down'))) })
  await delay(10)
  client.close()
  await delay(120)
  t.equal(client.state, 'closed')
  t.equal(server.connections(), 0)
  const once = sdk(t, server.url, { reconnect: false, token: () => Promise.reject(new Error('down')) })
  await until(() => once.state === 'closed')
  t.equal(server.connections(), 0)
})

t.test('token refresh never spins: long-lived and short-lived tokens are each asked for at a sane pace', async (t) => {
  const app = await buildApp(t)
  let longCalls = 0
  const long = sdk(t, app, {
    token: () => {
      longCalls++
      return sign('alice', { exp: Math.floor(Date.now() / 1000) + 60 * 86_400 })
    }
  })
  let shortCalls = 0
  const short = sdk(t, app, {
    token: () => {
      shortCalls++
      return sign('bob', { exp: Math.floor(Date.now() / 1000) + 3 })
    }
  })
  await until(() => long.state === 'open' && short.state === 'open')
  await delay(500)
  t.equal(longCalls, 1, 'a 60-day token is not refreshed now (and the timer does not overflow)')
  t.equal(shortCalls, 1, 'a 3-second token is refreshed half-way, not in a loop')
  await until(() => shortCalls === 2, 3000, 'the half-way refresh')
  t.equal(short.state, 'open')
})

t.test('a refresh still fetching its token when the client closes leaves nothing behind', async (t) => {
  const app = await buildApp(t)
  let calls = 0
  let release = () => {}
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  const client = sdk(t, app, {
    refreshBeforeExpiry: 1,
    token: async () => {
      calls++
      // The refresh's token arrives only after the client closed, however slow the machine.
      if (calls === 2) await held
      return sign('alice', { exp: Math.floor(Date.now() / 1000) + 2 })
    }
  })
  await until(() => calls === 2, 3000, 'the refresh to start')
  client.close()
  release()
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  await delay(1500)
  t.equal(calls, 2, 'no refresh after close')
  t.ok(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length <= before, 'no timer re-armed')
})

t.test('a throwing handler neither stops the other handlers nor the rest of a batch', async (t) => {
  const server = await scriptedServer(t, (socket) => {
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 10_000 } }))
    socket.on('message', (m) => {
      const msg = JSON.parse(String(m))
      if (msg.type !== 'subscribe') return
      const ev = (seq: number) => ({ type: 'agent:thought', room: 'r', seq, data: { runId: 'r', content: String(seq) }, ts: 't' })
      socket.send(JSON.stringify({ type: 'subscribed', id: msg.id, room: 'r', data: { seq: 0, epoch: 'e', recovered: false } }))
      socket.send('not json at all')
      socket.send(JSON.stringify([ev(1), ev(2)]))
    })
  })
  const errors: unknown[] = []
  const client = sdk(t, server.url, { onHandlerError: (e) => errors.push(e) })
  const byType: number[] = []
  const byRoom: number[] = []
  client.on('agent:thought', (e) => byType.push(e.seq as number))
  client.subscribe('r', (e) => {
    byRoom.push(e.seq as number)
    if (e.seq === 1) throw new Error('handler bug')
  })
  await until(() => byType.length === 2)
  t.same(byRoom, [1, 2])
  t.same(byType, [1, 2])
  t.match(errors, [{ message: 'handler bug' }])
})

t.test('by default a handler error is rethrown on its own, not swallowed', async (t) => {
  const server = await scriptedServer(t, (socket) => {
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 10_000 } }))
    socket.send(JSON.stringify({ type: 'subscribed', room: 'r', data: { seq: 0, epoch: 'e', recovered: false } }))
    socket.send(JSON.stringify({ type: 'agent:thought', room: 'r', seq: 1, data: { runId: 'r', content: 'x' }, ts: 't' }))
  })
  const queued: Array<() => void> = []
  const original = globalThis.queueMicrotask
  globalThis.queueMicrotask = (fn) => {
    queued.push(fn)
  }
  t.teardown(() => {
    globalThis.queueMicrotask = original
  })
  const client = sdk(t, server.url)
  client.on('agent:thought', () => {
    throw new Error('from the app')
  })
  await until(() => queued.length > 0)
  globalThis.queueMicrotask = original
  t.throws(() => queued[0]?.(), { message: 'from the app' })
})

t.test('unsubscribing and subscribing again at once keeps the new subscription', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = sdk(t, app, { token: sign('alice') })
  const first: number[] = []
  const infos: unknown[] = []
  const sub = client.subscribe('r', (e) => first.push(e.seq as number))
  await until(() => app.realtime.stats().subscriptions === 1)
  sub.unsubscribe()
  const second: number[] = []
  client.subscribe('r', (e) => second.push(e.seq as number), { onSubscribed: (i) => infos.push(i) })
  await until(() => infos.length === 1)
  await delay(20)
  await app.realtime.emit('r', thought('after'))
  await until(() => second.length === 1)
  t.same(first, [])
  t.equal(app.realtime.stats().subscriptions, 1)
})

t.test('more rooms than the burst allows are all subscribed: rate-limited subscribes are asked again', async (t) => {
  const app = await buildApp(t, { authorize: () => true, limits: { burst: 10, messagesPerSecond: 20 } })
  const client = sdk(t, app, { token: sign('alice') })
  const infos: string[] = []
  const errors: unknown[] = []
  await until(() => client.state === 'open')
  for (let i = 0; i < 25; i++)
    client.subscribe(`room:${i}`, undefined, { onSubscribed: () => infos.push(`room:${i}`), onError: (e) => errors.push(e) })
  await until(() => infos.length === 25, 8000, 'every room subscribed')
  t.same(errors, [])
  t.equal(app.realtime.stats().subscriptions, 25)
})

t.test('a send that timed out while queued is not sent later', async (t) => {
  const app = await buildApp(t)
  let calls = 0
  app.realtime.handle('once', Type.Object({}), () => {
    calls++
    return 'ran'
  })
  const client = sdk(t, app, { token: sign('alice'), reconnect: { initialDelay: 200 }, random: () => 0.999 })
  await until(() => client.state === 'open')
  app.realtime.connection(client.connectionId as string)?.close(1012)
  await until(() => client.state === 'reconnecting')
  await t.rejects(client.send('once', {}, { timeout: 20 }), { code: 'timeout' })
  await until(() => client.state === 'open')
  await delay(50)
  t.equal(calls, 0, 'the timed-out message never reached the handler')
})

t.test('a server that upgrades but never says ready is given up on after connectTimeout', async (t) => {
  const server = await scriptedServer(t, () => {})
  const client = sdk(t, server.url, { connectTimeout: 50 })
  await until(() => server.connections() >= 2, 3000, 'a second attempt')
  t.not(client.state, 'open')
})

t.test('the backoff keeps growing while every connection is closed right after ready', async (t) => {
  const opened: number[] = []
  const server = await scriptedServer(t, (socket) => {
    opened.push(Date.now())
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 10_000 } }))
    socket.close(4029, 'rate limit exceeded')
  })
  sdk(t, server.url, { reconnect: { initialDelay: 40, maxDelay: 10_000 }, random: () => 0.999 })
  await until(() => opened.length >= 4, 5000, 'four attempts')
  const gaps = opened.slice(1).map((at, i) => at - (opened[i] as number))
  t.ok((gaps[2] as number) > (gaps[0] as number) * 2, `the delays grow: ${gaps.join(', ')} ms`)
})

t.test('the watchdog stays quiet while the server has spoken within its heartbeat interval', async (t) => {
  const app = await buildApp(t, { heartbeat: { interval: 400, timeout: 1000 } })
  const client = sdk(t, app, { token: sign('alice'), heartbeatTimeout: 50 })
  await until(() => client.state === 'open')
  const before = app.realtime.stats().messagesIn
  await delay(200)
  t.equal(app.realtime.stats().messagesIn, before, 'four watchdog ticks inside the interval sent no ping')
  t.equal(client.state, 'open')
})

t.test('a message larger than the server accepts is refused by the client, and the connection stays', async (t) => {
  const app = await buildApp(t, { limits: { maxPayload: 2048 } })
  const seen: number[] = []
  app.realtime.handle('note', Type.Object({ text: Type.String() }), ({ data }) => {
    seen.push(data.text.length)
    return data.text.length
  })
  const client = sdk(t, app, { token: sign('alice') })
  const early = client.send('note', { text: 'é'.repeat(1500) })
  await t.rejects(
    early,
    { code: 'too_large', message: 'the message is larger than the server accepts (2048 bytes)' },
    'queued before ready, refused once the limit is known'
  )
  await until(() => client.state === 'open')
  const id = client.connectionId
  await t.rejects(client.send('note', { text: 'x'.repeat(3000) }), { code: 'too_large' })
  t.equal(await client.send('note', { text: 'x'.repeat(1500) }), 1500, 'a long message under the limit goes through')
  client.onRequest('hitl_request', () => ({ essay: 'y'.repeat(5000) }))
  await t.rejects(app.realtime.request(id as string, { type: 'hitl_request', data: { requestId: 'q', question: '?' } }), {
    code: 'FST_REALTIME_REQUEST_REJECTED',
    message: /too_large/
  })
  t.equal(client.connectionId, id, 'still the same connection')
  t.same(seen, [1500])
})

t.test('a late answer to an earlier subscribe neither fires onSubscribed twice nor revives a room left', async (t) => {
  let held: any
  const server = await scriptedServer(t, (socket) => {
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 10_000 } }))
    socket.on('message', (m) => {
      const msg = JSON.parse(String(m))
      const answer = (id: string, room: string, epoch: string) =>
        socket.send(JSON.stringify({ type: 'subscribed', id, room, data: { seq: 0, epoch, recovered: false } }))
      if (msg.type === 'unsubscribe') socket.send(JSON.stringify({ type: 'unsubscribed', id: msg.id, room: msg.room }))
      if (msg.type !== 'subscribe') return
      if (msg.room === 'gone') {
        // Answered only after the client has left the room.
        setTimeout(() => {
          answer(msg.id, 'gone', 'g1')
          socket.send(JSON.stringify({ type: 'agent:thought', room: 'gone', seq: 1, data: { runId: 'r', content: 'stale' }, ts: 't' }))
        }, 30)
      } else if (held === undefined) held = msg
      else {
        answer(held.id, 'r', 'old')
        answer(msg.id, 'r', 'new')
      }
    })
  })
  const client = sdk(t, server.url)
  await until(() => client.state === 'open')
  const infos: Array<{ epoch: string }> = []
  client.subscribe('r').unsubscribe()
  client.subscribe('r', undefined, { onSubscribed: (i) => infos.push(i) })
  const seen: unknown[] = []
  client.on('agent:thought', (e) => seen.push(e))
  client.subscribe('gone').unsubscribe()
  await delay(80)
  t.same(
    infos.map((i) => i.epoch),
    ['new'],
    'only the answer to the current subscribe counts'
  )
  t.same(seen, [], 'a late answer does not resubscribe a room the app left')
})

t.test('onPresence follows a room: the member list after every subscribed, then each join and leave, never as events', async (t) => {
  const app = await buildApp(t, { authorize: () => true, presence: true, presenceInfo: ({ user }) => ({ name: `N-${user.sub}` }) })
  const alice = sdk(t, app, { token: sign('alice') })
  const seen: Array<{ users: string[]; change: string | undefined }> = []
  const events: unknown[] = []
  const last = () => seen[seen.length - 1]
  alice.subscribe('doc:1', (e) => events.push(e), {
    onPresence: (members, change) =>
      seen.push({ users: members.map((m) => m.user).sort(), change: change && `${change.kind} ${change.member.user}` })
  })
  await until(() => last()?.users.includes('alice') === true, 5000, 'alice in her own list')
  t.equal(seen[0]?.change, undefined, 'the first call has the list, no change')

  const bob = sdk(t, app, { token: sign('bob') })
  bob.subscribe('doc:1')
  await until(() => last()?.change === 'join bob', 5000, 'join bob')
  t.same(last()?.users, ['alice', 'bob'])
  const members = await alice.presence('doc:1')
  t.same(
    members.sort((a, b) => a.user.localeCompare(b.user)),
    [
      { user: 'alice', connections: 1, info: { name: 'N-alice' } },
      { user: 'bob', connections: 1, info: { name: 'N-bob' } }
    ]
  )

  const lists = () => seen.filter((s) => s.change === undefined).length
  const before = lists()
  app.realtime.connection(alice.connectionId as string)?.close(1012)
  await until(() => lists() === before + 1 && last()?.users.join() === 'alice,bob', 5000, 'the list asked again after the reconnect')

  bob.close()
  await until(() => last()?.change === 'leave bob', 5000, 'leave bob')
  t.same(last()?.users, ['alice'])
  t.same(events, [], 'join, leave and the member list never reach the event handler')
})

t.test('presence refused: onError gets forbidden and the subscription stays; presence() of a room not held is refused', async (t) => {
  const app = await buildApp(t, { authorize: () => true, presence: (room) => room.startsWith('doc:') })
  const client = sdk(t, app, { token: sign('alice') })
  const errors: RealtimeClientError[] = []
  const events: unknown[] = []
  client.subscribe('plain', (e) => events.push(e), {
    onPresence: () => t.fail('presence is off for this room'),
    onError: (e) => errors.push(e)
  })
  await until(() => errors.length === 1)
  t.match(errors[0], { code: 'forbidden', message: 'presence is not enabled for "plain"' })
  await app.realtime.emit('plain', thought('still subscribed'))
  await until(() => events.length === 1)
  await t.rejects(client.presence('doc:2'), { code: 'forbidden', message: 'subscribe to "doc:2" before asking its presence' })
  client.close()
  await t.rejects(client.presence('doc:2'), { code: 'closed' })
})

/** A scripted server's answers to subscribe, and `ready` on connect. */
function presenceScript(onPresence: (msg: any, send: (frame: object) => void, connection: number, socket: WebSocket) => void) {
  let connections = 0
  return (socket: WebSocket) => {
    const connection = ++connections
    const send = (frame: object) => socket.send(JSON.stringify(frame))
    send({ type: 'ready', data: { connectionId: `c${connection}`, userId: 'alice', heartbeatMs: 10_000 } })
    socket.on('message', (m) => {
      const msg = JSON.parse(String(m))
      if (msg.type === 'subscribe') send({ type: 'subscribed', id: msg.id, room: msg.room, data: { seq: 0, epoch: 'e', recovered: false } })
      if (msg.type === 'presence') onPresence(msg, send, connection, socket)
    })
  }
}

t.test('a join or leave that overtakes the member list is applied on top of it; answers for a room left are ignored', async (t) => {
  const member = (user: string) => ({ user, connections: 1 })
  const server = await scriptedServer(
    t,
    presenceScript((msg, send) => {
      if (msg.room === 'early') {
        send({ type: 'join', room: 'nowhere', data: member('zoe') })
        send({ type: 'join', room: 'plain', data: member('zoe') })
        send({ type: 'join', room: 'early', data: member('bob') })
        send({ type: 'leave', room: 'early', data: { user: 'carol', connections: 0 } })
        send({ type: 'presence', id: msg.id, room: 'early', data: { members: [member('alice'), member('carol')] } })
        send({ type: 'leave', room: 'early', data: { user: 'alice', connections: 0 } })
      } else if (msg.room === 'gone') send({ type: 'presence', id: msg.id, room: 'gone', data: { members: [member('alice')] } })
      else send({ type: 'error', id: msg.id, room: msg.room, data: { code: 'forbidden', message: 'no' } })
    })
  )
  const client = sdk(t, server.url)
  const seen: string[] = []
  const errors: unknown[] = []
  const report = (room: string) => ({
    onPresence: (members: Array<{ user: string }>, change?: { kind: string; member: { user: string } }) =>
      seen.push(`${room}: ${members.map((m) => m.user).join(',')}${change ? ` (${change.kind} ${change.member.user})` : ''}`),
    onError: (e: unknown) => errors.push(e)
  })
  client.subscribe('plain')
  client.subscribe('early', undefined, report('early'))
  for (const room of ['gone', 'gone-error']) {
    const sub = client.subscribe(room, undefined, { ...report(room), onSubscribed: () => sub.unsubscribe() })
  }
  await until(() => seen.length === 2)
  await delay(30)
  t.same(seen, ['early: alice,bob', 'early: bob (leave alice)'])
  t.same(errors, [], 'the refusal for a room already left is not reported')
})

t.test('a member list lost with the connection is asked again; one pending at close() is dropped quietly', async (t) => {
  const server = await scriptedServer(
    t,
    presenceScript((msg, send, connection, socket) => {
      if (msg.room === 'slow') return // never answered
      if (connection === 1) socket.close(4000, 'test')
      else send({ type: 'presence', id: msg.id, room: msg.room, data: { members: [{ user: 'alice', connections: 1 }] } })
    })
  )
  // The server closes the first connection (with a code that says reconnect) when it is asked the member list.
  const client = sdk(t, server.url)
  const seen: string[][] = []
  const errors: unknown[] = []
  client.subscribe('slow', undefined, { onPresence: () => t.fail('never answered'), onError: (e) => errors.push(e) })
  client.subscribe('drop', undefined, { onPresence: (m) => seen.push(m.map((x) => x.user)), onError: (e) => errors.push(e) })
  await until(() => seen.length === 1)
  t.same(seen, [['alice']])
  t.equal(client.connectionId, 'c2')
  await t.rejects(client.presence('slow', { timeout: 30 }), { code: 'timeout', message: 'no ack for "presence" within 30 ms' })
  client.close()
  await delay(20)
  t.same(errors, [], 'neither the lost nor the closed request is reported')
})
