// Reliability 9: a TCP proxy on the loopback that black-holes a connection in both directions.
import { createServer, Socket as NetSocket, type Socket } from 'node:net'
import t from 'tap'
import { sdk, until } from '../helpers/client.js'
import { buildApp, sign } from '../helpers/index.js'

t.test('a black-holed connection is reaped by the server and replaced by the client', async (t) => {
  const interval = 100
  const timeout = 100
  const app = await buildApp(t, { authorize: () => true, heartbeat: { interval, timeout } })
  const upstream = (app.server.address() as { port: number }).port
  const pairs: Array<{ client: Socket; server: Socket; holed: boolean }> = []
  const proxy = createServer((client) => {
    const server = new NetSocket()
    const pair = { client, server, holed: false }
    pairs.push(pair)
    server.connect(upstream, '127.0.0.1')
    client.on('data', (d: Buffer) => pair.holed || server.write(d))
    server.on('data', (d: Buffer) => pair.holed || client.write(d))
    client.on('error', () => {})
    server.on('error', () => {})
    client.on('close', () => server.destroy())
    server.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const p of pairs) {
      p.client.destroy()
      p.server.destroy()
    }
    proxy.close()
  })
  const port = (proxy.address() as { port: number }).port
  const client = sdk(t, `ws://127.0.0.1:${port}/ws`, { token: sign('alice'), heartbeatTimeout: 100 })
  const states: string[] = []
  client.onStateChange((s) => states.push(s))
  client.subscribe('workflow:proxy')
  await until(() => app.realtime.stats().subscriptions === 1)
  const first = client.connectionId
  const holedAt = Date.now()
  ;(pairs[0] as { holed: boolean }).holed = true
  await until(() => app.realtime.connection(first as string) === undefined, 3000, 'the server to reap it')
  const reapedAfter = Date.now() - holedAt
  await until(() => client.state === 'open' && client.connectionId !== first, 3000, 'the client to reconnect')
  const replacedAfter = Date.now() - holedAt
  await until(() => app.realtime.stats().subscriptions === 1)
  t.ok(reapedAfter <= 3 * (interval + timeout), `reaped after ${reapedAfter} ms (interval + timeout = ${interval + timeout} ms)`)
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
