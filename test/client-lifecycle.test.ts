// The client SDK's own lifecycle: backoff, tokens and their refresh, the watchdog, close().
import t from 'tap'
import { backoff } from '../src/client/index.js'
import { Type } from '../src/index.js'
import { scriptedServer, sdk, until } from './helpers/client.js'
import { buildApp, delay, sign } from './helpers/index.js'

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r', content } })

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
