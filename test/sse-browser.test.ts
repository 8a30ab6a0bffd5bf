// The client from the package build, in headless Chromium without WebSocket, over Server-Sent Events.
import Fastify from 'fastify'
import t from 'tap'
import realtime from '../src/index.js'
import { browserUnavailable, freePort, launch, servePage } from './helpers/browser.js'
import { SECRET, sign } from './helpers/index.js'

const unavailable = browserUnavailable()

const page = (port: number) => `<!doctype html>
<html><head><meta charset="utf-8"><title>sse client test</title></head>
<body><pre id="log"></pre>
<script type="module">
  import { createClient } from '/client.js'
  window.seen = { events: [], subscribed: [] }
  const client = createClient({
    url: 'ws://127.0.0.1:${port}/ws',
    token: async () => (await fetch('/token')).text(),
    reconnect: { initialDelay: 20, maxDelay: 100 }
  })
  window.client = client
  client.subscribe('workflow:sse', (e) => { window.seen.events.push(e.seq) }, {
    onSubscribed: (info) => { window.seen.subscribed.push(info.recovered) }
  })
</script></body></html>`

const thought = (n: number) => ({ type: 'agent:thought' as const, data: { runId: 'b', content: `event ${n}` } })

t.test(
  'in Chromium without WebSocket: the client streams over SSE, the server cuts it three times, every event arrives once, in order',
  { skip: unavailable },
  async (t) => {
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    const app = Fastify({ forceCloseConnections: true })
    const lastIds: string[] = []
    app.addHook('onRequest', async (request) => {
      const id = request.headers['last-event-id']
      if (request.url.startsWith('/ws/sse') && typeof id === 'string') lastIds.push(id)
    })
    await app.register(realtime, { jwt: { secret: SECRET }, cors: { origin }, authorize: () => true })
    await servePage(t, app, port, page(port), sign('browser-user'))

    const browser = await launch()
    t.teardown(() => browser.close())
    const tab = await browser.newPage()
    await tab.addInitScript(() => {
      delete (window as { WebSocket?: unknown }).WebSocket
    })
    await tab.goto(origin)
    await tab.waitForFunction(() => (window as any).seen?.subscribed.length === 1)
    t.equal(await tab.evaluate(() => (window as any).client.transport), 'sse')
    t.same(app.realtime.stats().transports, { websocket: 0, sse: 1 })

    let n = 0
    for (let cut = 0; cut < 3; cut++) {
      for (let i = 0; i < 10; i++) await app.realtime.emit('workflow:sse', thought(++n))
      const id = (await tab.evaluate(() => (window as any).client.connectionId)) as string
      // Mid-run: the stream is cut while the run goes on.
      const conn = app.realtime.connection(id) as unknown as { terminate(why: string): void }
      conn.terminate('test: stream cut')
      for (let i = 0; i < 10; i++) await app.realtime.emit('workflow:sse', thought(++n))
      await tab.waitForFunction((old) => {
        const c = (window as any).client
        return c.state === 'open' && c.connectionId !== undefined && c.connectionId !== old
      }, id)
    }
    await tab.waitForFunction((total) => (window as any).seen.events.length >= total, n, { timeout: 10_000 })
    const seen = await tab.evaluate(() => (window as any).seen)
    t.same(
      seen.events,
      Array.from({ length: n }, (_, i) => i + 1),
      'every event once, in order'
    )
    t.equal(lastIds.length, 3, 'each new stream resumed with Last-Event-ID')
    for (const id of lastIds) t.match(id, /^workflow:sse~[^~ ]+~\d+$/)
  }
)
