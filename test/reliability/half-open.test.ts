// Reliability 9: a TCP proxy on the loopback that black-holes a connection in both directions.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import t from 'tap'
import { sdk, until } from '../helpers/client.js'
import { buildApp, sign } from '../helpers/index.js'
import { type ProxyPair, tcpProxy } from '../helpers/proxy.js'

t.test('a black-holed connection is reaped by the server and replaced by the client', async (t) => {
  const interval = 100
  const timeout = 100
  const app = await buildApp(t, { authorize: () => true, heartbeat: { interval, timeout } })
  const upstream = (app.server.address() as { port: number }).port
  const { port, pairs } = await tcpProxy(t, upstream)
  const client = sdk(t, `ws://127.0.0.1:${port}/ws`, { token: sign('alice'), heartbeatTimeout: 100 })
  const states: string[] = []
  client.onStateChange((s) => states.push(s))
  client.subscribe('workflow:proxy')
  await until(() => app.realtime.stats().subscriptions === 1 && client.state === 'open', 30_000, 'the client to subscribe')
  const first = client.connectionId
  // The pair carrying the client's current socket (the last one, should a loaded machine have made it reconnect already).
  const holed = pairs[pairs.length - 1] as ProxyPair
  // The reaping bound holds for the server's timers; a loaded machine delays them, so the bound grows by the event-loop
  // lag measured meanwhile (the ping, the reaping timer and the poll below each wait at most that much longer).
  const lag = monitorEventLoopDelay({ resolution: 10 })
  lag.enable()
  const holedAt = Date.now()
  holed.holed = true
  await until(() => app.realtime.connection(first as string) === undefined, 30_000, 'the server to reap it')
  const reapedAfter = Date.now() - holedAt
  lag.disable()
  const maxLag = Math.round(lag.max / 1e6)
  await until(() => client.state === 'open' && client.connectionId !== first, 30_000, 'the client to reconnect')
  const replacedAfter = Date.now() - holedAt
  await until(() => app.realtime.stats().subscriptions === 1, 30_000, 'the client to subscribe again')
  const bound = 3 * (interval + timeout) + 3 * maxLag
  t.ok(
    reapedAfter <= bound,
    `reaped after ${reapedAfter} ms (interval + timeout = ${interval + timeout} ms; bound ${bound} ms with ${maxLag} ms event-loop lag)`
  )
  t.match(states.join(','), /reconnecting,open$/, 'the client went reconnecting, then open')
  const stats = app.realtime.stats()
  t.same(
    { connections: stats.connections, subscriptions: stats.subscriptions, pendingRequests: stats.pendingRequests },
    { connections: 1, subscriptions: 1, pendingRequests: 0 },
    'maps back to one live connection'
  )
  t.comment(
    `reliability/half-open: reaped by the server after ${reapedAfter} ms; the client was back on a new socket after ${replacedAfter} ms`
  )
})
