// The client's transport module on its own: the WebSocket link and the plain request that explains refusals.
import t from 'tap'
import WebSocket from 'ws'
import { preflight, webSocketTransport } from '../src/client/transport.js'
import { scriptedServer, until } from './helpers/client.js'
import { buildApp } from './helpers/index.js'

t.test('preflight reads a refusal: without a token it stops at the first 401; a text body stays text', async (t) => {
  const app = await buildApp(t)
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`
  t.match(await preflight(url, undefined), { status: 401, body: { message: 'Missing token' } })
  const plain = await scriptedServer(t, () => {})
  const answer = await preflight(plain.url, 'token')
  t.equal(typeof answer?.body, 'string', 'a body that is not JSON is kept as text')
  t.equal(answer?.status, 426)
})

t.test('preflight without fetch (an old runtime) answers nothing', async (t) => {
  const saved = globalThis.fetch
  ;(globalThis as { fetch?: unknown }).fetch = undefined
  t.teardown(() => {
    globalThis.fetch = saved
  })
  t.equal(await preflight('ws://127.0.0.1:1/ws', undefined), undefined)
})

t.test('a link writes nothing once its socket is closed, and reports no event after close()', async (t) => {
  const server = await scriptedServer(t, () => {})
  const closes: number[] = []
  const link = webSocketTransport(WebSocket as never).open(server.url, undefined, {
    message: () => {},
    close: (code) => closes.push(code)
  })
  t.equal(link.send('early'), false, 'not open yet: nothing written')
  await until(() => server.connections() === 1)
  link.close(1000, 'done')
  t.equal(link.send('late'), false, 'closed: nothing written')
  t.same(closes, [], 'close() detaches the link')
})

t.test('the endpoint lets a page read its refusal: any origin gets its 4xx with Access-Control-Allow-Origin', async (t) => {
  const app = await buildApp(t, { cors: { origin: 'http://allowed.example' } })
  const http = `http://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`
  const refused = await fetch(http, { headers: { origin: 'http://evil.example' } })
  t.equal(refused.status, 403)
  t.equal(refused.headers.get('access-control-allow-origin'), 'http://evil.example')
  t.match(await refused.json(), { code: 'FST_REALTIME_FORBIDDEN_ORIGIN' })
  const allowed = await fetch(http, { headers: { origin: 'http://allowed.example' } })
  t.equal(allowed.status, 401)
  t.equal(allowed.headers.get('access-control-allow-origin'), 'http://allowed.example', 'the CORS answer is kept')
})
