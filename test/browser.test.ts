// The client from the package build, in headless Chromium, against a real server.
import Fastify from 'fastify'
import t from 'tap'
import realtime from '../src/index.js'
import { browserUnavailable, freePort, launch, servePage } from './helpers/browser.js'
import { SECRET, sign } from './helpers/index.js'

const unavailable = browserUnavailable()
if (unavailable !== undefined && process.env.REALTIME_REQUIRE_BROWSER === '1') {
  t.fail(`REALTIME_REQUIRE_BROWSER=1 but ${unavailable}`)
}

const page = (port: number) => `<!doctype html>
<html><head><meta charset="utf-8"><title>client test</title></head>
<body><h1>realtime client</h1><pre id="log"></pre>
<script type="module">
  import { createClient } from '/client.js'
  const log = (line) => { document.getElementById('log').textContent += line + '\\n' }
  window.seen = { events: [], states: [], subscribed: [] }
  const client = createClient({
    url: 'ws://127.0.0.1:${port}/ws',
    token: async () => (await fetch('/token')).text(),
    reconnect: { initialDelay: 50, maxDelay: 200 }
  })
  window.client = client
  client.onStateChange((s) => { window.seen.states.push(s); log('state ' + s) })
  client.subscribe('workflow:browser', (e) => { window.seen.events.push(e.seq); log('#' + e.seq + ' ' + e.data.content) }, {
    onSubscribed: (info) => { window.seen.subscribed.push(info.recovered); log('subscribed recovered=' + info.recovered) }
  })
</script></body></html>`

t.test(
  'in Chromium: connects with the subprotocol token, receives events, survives a server-side disconnect and resumes',
  { skip: unavailable },
  async (t) => {
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    const app = Fastify()
    const upgrades: Array<{ url: string; protocols: string | undefined }> = []
    app.addHook('onRequest', async (request) => {
      if (request.url.startsWith('/ws')) upgrades.push({ url: request.url, protocols: request.headers['sec-websocket-protocol'] })
    })
    await app.register(realtime, { jwt: { secret: SECRET }, cors: { origin }, authorize: () => true })
    await servePage(t, app, port, page(port), sign('browser-user'))

    const browser = await launch()
    t.teardown(() => browser.close())
    const tab = await browser.newPage()
    await tab.goto(origin)
    await tab.waitForFunction(() => (window as any).seen?.subscribed.length === 1)
    const connectionId = await tab.evaluate(() => (window as any).client.connectionId as string)
    t.equal(app.realtime.connection(connectionId)?.userId, 'browser-user')

    for (let n = 1; n <= 5; n++)
      await app.realtime.emit('workflow:browser', { type: 'agent:thought', data: { runId: 'b', content: `event ${n}` } })
    await tab.waitForFunction(() => (window as any).seen.events.length === 5)

    const conn = app.realtime.connection(connectionId) as unknown as { terminate(why: string): void }
    conn.terminate('test: server-side disconnect')
    for (let n = 6; n <= 10; n++)
      await app.realtime.emit('workflow:browser', { type: 'agent:thought', data: { runId: 'b', content: `event ${n}` } })
    await tab.waitForFunction(() => (window as any).seen.events.length === 10, undefined, { timeout: 10_000 })

    const seen = await tab.evaluate(() => (window as any).seen)
    t.same(seen.events, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 'every event once, in order, across the disconnect')
    t.same(seen.states, ['open', 'reconnecting', 'open'])
    t.same(seen.subscribed, [false, true], 'the resubscribe recovered the missed events')
    t.equal(upgrades.length, 2)
    for (const upgrade of upgrades) {
      t.equal(upgrade.url, '/ws', 'no token in the URL')
      t.match(upgrade.protocols, /^realtime\.v1, bearer\.[\w-]+\.[\w-]+\.[\w-]+$/, 'the token travelled as the bearer subprotocol')
    }
    await tab.screenshot({ path: 'test/artifacts/browser-client.png' })
  }
)
