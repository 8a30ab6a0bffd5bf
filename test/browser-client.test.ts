// The client and its React bindings from the package build, in headless Chromium, against a real server: a refused
// origin, a reloaded page that resumes from saved positions, and a React page in StrictMode.
import { readFile } from 'node:fs/promises'
import { build } from 'esbuild'
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import realtime, { type RealtimeOptions } from '../src/index.js'
import { browserUnavailable, freePort, launch } from './helpers/browser.js'
import { SECRET, sign } from './helpers/index.js'

const unavailable = browserUnavailable()
if (unavailable !== undefined && process.env.REALTIME_REQUIRE_BROWSER === '1') {
  t.fail(`REALTIME_REQUIRE_BROWSER=1 but ${unavailable}`)
}

interface Test {
  teardown(fn: () => unknown): void
}

interface Served {
  app: FastifyInstance
  port: number
  upgrades: () => number
}

/** A server on a known port that serves `/` (the page), `/client.js` (the build) and `/token`. */
async function serve(
  t: Test,
  page: (port: number) => string,
  options: RealtimeOptions = {},
  port?: number,
  routes?: (app: FastifyInstance) => void
): Promise<Served> {
  port ??= await freePort()
  const app = Fastify()
  let upgrades = 0
  app.addHook('onRequest', async (request) => {
    if (request.headers.upgrade !== undefined) upgrades++
  })
  await app.register(realtime, { jwt: { secret: SECRET }, cors: { origin: `http://127.0.0.1:${port}` }, authorize: () => true, ...options })
  const client = await readFile('dist/client.js', 'utf8')
  app.get('/', async (_req, reply) => reply.type('text/html').send(page(port)))
  app.get('/client.js', async (_req, reply) => reply.type('text/javascript').send(client))
  app.get('/token', async () => sign('browser-user'))
  routes?.(app)
  await app.listen({ host: '127.0.0.1', port })
  t.teardown(() => app.close())
  return { app, port, upgrades: () => upgrades }
}

t.test('in Chromium: a page on a refused origin gets the 403 reason from onError and stops retrying', { skip: unavailable }, async (t) => {
  const page = (port: number) => `<!doctype html><meta charset="utf-8"><pre id="log"></pre>
<script type="module">
  import { createClient } from '/client.js'
  window.seen = { errors: [], states: [] }
  const client = createClient({
    url: 'ws://127.0.0.1:${port}/ws',
    token: async () => (await fetch('/token')).text(),
    reconnect: { initialDelay: 50, maxDelay: 200 },
    onError: (e) => { window.seen.errors.push({ kind: e.kind, status: e.status, reason: e.reason, retrying: e.retrying }); document.getElementById('log').textContent += e.reason + '\\n' }
  })
  client.onStateChange((s, _p, close) => window.seen.states.push(s + ' ' + (close ? close.code : '')))
</script>`
  // The page is served from localhost; the server allows only its 127.0.0.1 origin.
  const port = await freePort()
  const served = await serve(t, page, { cors: { origin: `http://127.0.0.1:${port}` } }, port)
  const browser = await launch()
  t.teardown(() => browser.close())
  const tab = await browser.newPage()
  await tab.goto(`http://localhost:${port}/`)
  await tab.waitForFunction(() => (window as any).seen.states.some((s: string) => s.startsWith('closed')), undefined, { timeout: 10_000 })
  const seen = await tab.evaluate(() => (window as any).seen)
  t.same(seen.errors, [{ kind: 'refused', status: 403, reason: `Origin http://localhost:${port} is not allowed`, retrying: false }])
  t.equal(served.upgrades(), 2, 'two upgrades, then no more')
  t.match(await tab.textContent('#log'), /is not allowed/, 'the page shows the reason')
})

t.test(
  'in Chromium: a reloaded page resumes from positions saved in sessionStorage, nothing lost or repeated',
  { skip: unavailable },
  async (t) => {
    const page = (port: number) => `<!doctype html><meta charset="utf-8">
<script type="module">
  import { createClient } from '/client.js'
  const ROOM = 'workflow:reload'
  const saved = JSON.parse(sessionStorage.getItem('positions') ?? '{}')
  window.seen = { events: [], subscribed: [] }
  const client = createClient({ url: 'ws://127.0.0.1:${port}/ws', token: async () => (await fetch('/token')).text() })
  const position = saved[ROOM]
  client.subscribe(ROOM, (e) => {
    window.seen.events.push(e.seq)
    // Saved after every event: a reload picks up from the last one this page received.
    sessionStorage.setItem('positions', JSON.stringify(client.positions()))
  }, {
    since: position?.seq, epoch: position?.epoch,
    onSubscribed: (info) => window.seen.subscribed.push(info.recovered)
  })
</script>`
    const { app, port } = await serve(t, page)
    const browser = await launch()
    t.teardown(() => browser.close())
    const tab = await browser.newPage()
    const emit = async (from: number, to: number) => {
      for (let n = from; n <= to; n++)
        await app.realtime.emit('workflow:reload', { type: 'agent:thought', data: { runId: 'r', content: `${n}` } })
    }
    await tab.goto(`http://127.0.0.1:${port}/`)
    await tab.waitForFunction(() => (window as any).seen?.subscribed.length === 1)
    await emit(1, 3)
    await tab.waitForFunction(() => (window as any).seen.events.length === 3)
    // Gone for the reload: the events emitted meanwhile must arrive after it, once.
    await tab.goto('about:blank')
    await emit(4, 6)
    await tab.goBack()
    await tab.waitForFunction(() => (window as any).seen?.subscribed.length === 1)
    await tab.waitForFunction(() => (window as any).seen.events.length === 3)
    await emit(7, 7)
    await tab.waitForFunction(() => (window as any).seen.events.length === 4)
    const seen = await tab.evaluate(() => (window as any).seen)
    t.same(seen.subscribed, [true], 'the resumed subscribe recovered the missed events')
    t.same(seen.events, [4, 5, 6, 7], 'after the reload: the missed events once, in order, then live')
  }
)

/** The React page: StrictMode, the provider, and a component rendering the streamed run. */
const reactApp = (port: number) => `
import { StrictMode, createElement as h } from 'react'
import { createRoot } from 'react-dom/client'
import { createClient } from './dist/client.js'
import { RealtimeProvider, useConnection, useRoom, useStream } from './dist/react.js'

const client = createClient({ url: 'ws://127.0.0.1:${port}/ws', token: async () => (await fetch('/token')).text() })
window.client = client

function Run() {
  const { state } = useConnection()
  const room = useRoom('workflow:react')
  const stream = useStream('workflow:react')
  return h('main', null,
    h('p', { id: 'state' }, state),
    h('p', { id: 'subscribed' }, room.info ? 'subscribed' : 'waiting'),
    h('p', { id: 'text' }, stream.text),
    h('p', { id: 'done' }, String(stream.done)),
    h('p', { id: 'events' }, String(room.events.length)))
}

createRoot(document.getElementById('root')).render(
  h(StrictMode, null, h(RealtimeProvider, { client }, h(Run), h(Run))))
`

t.test(
  'in Chromium: a React page in StrictMode opens one socket, subscribes once and renders a streamed run',
  { skip: unavailable },
  async (t) => {
    const port = await freePort()
    const bundled = await build({
      stdin: { contents: reactApp(port), resolveDir: process.cwd(), loader: 'js' },
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      // A development build: StrictMode mounts, unmounts and mounts again only there.
      define: { 'process.env.NODE_ENV': '"development"' }
    })
    const script = bundled.outputFiles[0]?.text as string
    let subscribes = 0
    const { app, upgrades } = await serve(
      t,
      () => '<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module" src="/app.js"></script>',
      {
        authorize: ({ action }) => {
          if (action === 'subscribe') subscribes++
          return true
        }
      },
      port,
      (app) => app.get('/app.js', async (_req, reply) => reply.type('text/javascript').send(script))
    )
    const browser = await launch()
    t.teardown(() => browser.close())
    const tab = await browser.newPage()
    await tab.goto(`http://127.0.0.1:${port}/`)
    await tab.waitForFunction(() => document.querySelectorAll('#subscribed')[1]?.textContent === 'subscribed')
    t.equal(await tab.textContent('#state'), 'open')

    const stream = app.realtime.stream('workflow:react', { type: 'agent:thought', data: { runId: 'react', content: '' } })
    for (const token of ['Looking', ' up', ' the', ' invoice']) stream.append(token)
    await tab.waitForFunction(() => document.querySelector('#text')?.textContent === 'Looking up the invoice')
    t.equal(await tab.textContent('#done'), 'false', 'still growing')
    await stream.end()
    await tab.waitForFunction(() => document.querySelector('#done')?.textContent === 'true')
    t.equal(await tab.textContent('#events'), '1', 'the finished event, once')
    t.same(
      await tab.$$eval('#text', (nodes) => nodes.map((n) => n.textContent)),
      ['Looking up the invoice', 'Looking up the invoice'],
      'both components render the run'
    )
    t.equal(upgrades(), 1, 'one socket for the page, in StrictMode')
    t.equal(subscribes, 1, 'one subscription for two components, in StrictMode')
    t.equal(app.realtime.stats().connections, 1)
  }
)
