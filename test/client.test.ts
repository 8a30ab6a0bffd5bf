// The client SDK against a real server: connecting, typed events, acks, server requests, resuming, rooms.
import t from 'tap'
import WebSocket from 'ws'
import { createClient, type RealtimeClientError } from '../src/client/index.js'
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
  app.realtime.leave(client.connectionId as string, 'team:1')
  await delay(20)
  await app.realtime.emit('team:1', thought('after leave'))
  const errors: RealtimeClientError[] = []
  client.subscribe('workflow:secret', undefined, { onError: (e) => errors.push(e) })
  await until(() => errors.length === 1)
  t.match(errors[0], { code: 'forbidden' })
  await app.realtime.join(client.connectionId as string, 'team:2')
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
  t.throws(() => createClient({ url: 'ws://localhost/ws' }), { name: 'TypeError', message: /pass `WebSocket` from the "ws" package/ })
  t.throws(() => createClient({ url: 'http://localhost/ws', WebSocket: WebSocket as never }), { message: /ws:\/\/ or wss:\/\// })
})
