// A state room followed from headless Chromium with the client from the package build: the page's value ends equal
// to the server's, across a server-side disconnect.
import Fastify from 'fastify'
import t from 'tap'
import realtime from '../src/index.js'
import { browserUnavailable, freePort, launch, servePage } from './helpers/browser.js'
import { SECRET, sign } from './helpers/index.js'

const unavailable = browserUnavailable()

const page = (port: number) => `<!doctype html>
<html><head><meta charset="utf-8"><title>state room</title></head><body>
<script type="module">
  import { createClient } from '/client.js'
  const client = createClient({ url: 'ws://127.0.0.1:${port}/ws', token: async () => (await fetch('/token')).text(), reconnect: { initialDelay: 50, maxDelay: 200 } })
  window.client = client
  window.values = []
  window.live = client.liveState('plan:browser', (value) => window.values.push(value))
</script></body></html>`

t.test(
  'in Chromium: liveState follows a state room across a disconnect and ends with the server’s value',
  { skip: unavailable },
  async (t) => {
    const port = await freePort()
    const app = Fastify()
    await app.register(realtime, { jwt: { secret: SECRET }, cors: { origin: `http://127.0.0.1:${port}` }, authorize: () => true })
    await servePage(t, app, port, page(port), sign('browser-user'))
    const state = app.realtime.state<{ nodes: Array<{ id: string; status: string }> }>('plan:browser')
    const graph = { nodes: Array.from({ length: 20 }, (_, i) => ({ id: `n${i}`, status: 'pending' })) }
    await state.set(graph)

    const browser = await launch()
    t.teardown(() => browser.close())
    const tab = await browser.newPage()
    await tab.goto(`http://127.0.0.1:${port}`)
    await tab.waitForFunction(() => (window as any).live?.version === 1)
    for (let i = 0; i < 10; i++) await state.patch([{ op: 'replace', path: `/nodes/${i}/status`, value: 'done' }])
    await tab.waitForFunction(() => (window as any).live.version === 11)
    const connectionId = await tab.evaluate(() => (window as any).client.connectionId as string)
    ;(app.realtime.connection(connectionId) as unknown as { terminate(why: string): void }).terminate('test: server-side disconnect')
    for (let i = 10; i < 20; i++) await state.patch([{ op: 'replace', path: `/nodes/${i}/status`, value: 'done' }])
    await tab.waitForFunction(() => (window as any).live.version === 21, undefined, { timeout: 10_000 })
    t.same(await tab.evaluate(() => (window as any).live.value), await state.get(), "the page's value is the server's")
    const distinct = await tab.evaluate(() => new Set((window as any).values).size === (window as any).values.length)
    t.ok(distinct, 'a new object for every change')
  }
)
