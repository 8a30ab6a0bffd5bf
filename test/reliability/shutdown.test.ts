// Reliability 11: graceful shutdown under load.
import t from 'tap'
import { buildApp, connect, refused } from '../helpers/index.js'

t.test('app.close() with 200 clients and pending requests: 503 for new upgrades, 1001 for all within 1 s, nothing left', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const clients = await Promise.all(Array.from({ length: 200 }, (_, i) => connect(app, `user${i}`)))
  await Promise.all(clients.slice(0, 50).map((c) => c.subscribe('workflow:shutdown')))
  const pending = Array.from({ length: 10 }, (_, i) =>
    app.realtime.request('workflow:shutdown', { type: 'hitl_request', data: { requestId: `q${i}`, question: '?' } }).then(
      () => 'resolved',
      (err: { code: string }) => err.code
    )
  )
  const started = Date.now()
  const closing = app.close()
  const late = await refused(app, 'latecomer').catch((err: Error) => ({ status: 0, body: { message: err.message } }))
  await closing
  const closes = await Promise.all(clients.map((c) => c.closed))
  const elapsed = Date.now() - started
  const codes = new Map<number, number>()
  for (const { code } of closes) codes.set(code, (codes.get(code) ?? 0) + 1)
  // While the hooks run, the upgrade gets 503; once the listener is closed, the TCP connection itself is refused.
  t.ok(late.status === 503 || late.status === 0, `an upgrade during shutdown is refused (${late.status || late.body.message})`)
  t.same(Object.fromEntries(codes), { 1001: 200 }, 'every client got 1001, none 1005 or 1006')
  t.ok(elapsed < 1000, `all closed in ${elapsed} ms`)
  t.same(await Promise.all(pending), Array(10).fill('FST_REALTIME_REQUEST_DISCONNECTED'), 'pending requests were rejected')
  t.equal(app.realtime.stats().connections, 0)
  // app.close() does not wait for the close handshakes; the sockets are gone moments later.
  for (let i = 0; i < 100 && app.websocketServer.clients.size > 0; i++) await new Promise((r) => setTimeout(r, 10))
  t.equal(app.websocketServer.clients.size, 0, 'no socket left')
  t.comment(`reliability/shutdown: 200 clients closed with 1001 in ${elapsed} ms; 10 pending requests rejected`)
})
