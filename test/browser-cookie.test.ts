// In Chromium: the JWT in an HttpOnly cookie, the client SDK with no token of its own, and a foreign page refused.
import { readFile } from 'node:fs/promises'
import Fastify from 'fastify'
import t from 'tap'
import realtime from '../src/index.js'
import { browserUnavailable, freePort, launch } from './helpers/browser.js'
import { SECRET } from './helpers/index.js'

const unavailable = browserUnavailable()
if (unavailable !== undefined && process.env.REALTIME_REQUIRE_BROWSER === '1') {
  t.fail(`REALTIME_REQUIRE_BROWSER=1 but ${unavailable}`)
}

const page = (wsUrl: string, login: boolean) => `<!doctype html>
<html><head><meta charset="utf-8"><title>cookie test</title></head><body>
<script type="module">
  import { createClient } from '/client.js'
  window.seen = { events: [], states: [] }
  ${login ? "await fetch('/login', { method: 'POST' })" : ''}
  const client = createClient({ url: '${wsUrl}', reconnect: { initialDelay: 50, maxDelay: 200 } })
  window.client = client
  client.onStateChange((s) => window.seen.states.push(s))
  client.on('agent:thought', (e) => window.seen.events.push(e.room + ' ' + e.data.content))
</script></body></html>`

t.test(
  'in Chromium: the token cookie connects the SDK from the allowed page; a page of another origin is refused 403',
  { skip: unavailable },
  async (t) => {
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    const bundle = await readFile('dist/client.js', 'utf8')
    const app = Fastify()
    const statuses: number[] = []
    app.addHook('onResponse', async (request, reply) => {
      if (request.url.startsWith('/ws')) statuses.push(reply.statusCode)
    })
    await app.register(realtime, {
      jwt: { secret: SECRET, cookie: 'token' },
      cors: { origin },
      subscriptions: (user) => [`user:${user.sub}`]
    })
    app.get('/', async (_req, reply) => reply.type('text/html').send(page(`ws://127.0.0.1:${port}/ws`, true)))
    app.get('/client.js', async (_req, reply) => reply.type('text/javascript').send(bundle))
    app.post('/login', async (_req, reply) =>
      reply.header('set-cookie', `token=${app.jwt.sign({ sub: 'cookie-user' })}; HttpOnly; Path=/; SameSite=Lax`).send({ ok: true })
    )
    await app.listen({ host: '127.0.0.1', port })
    t.teardown(() => app.close())

    // Another origin (another port) whose page opens a socket to the app: the browser sends the cookie along.
    const foreignPort = await freePort()
    const foreign = Fastify()
    foreign.get('/', async (_req, reply) => reply.type('text/html').send(page(`ws://127.0.0.1:${port}/ws`, false)))
    foreign.get('/client.js', async (_req, reply) => reply.type('text/javascript').send(bundle))
    await foreign.listen({ host: '127.0.0.1', port: foreignPort })
    t.teardown(() => foreign.close())

    const browser = await launch()
    t.teardown(() => browser.close())
    const tab = await browser.newPage()
    await tab.goto(origin)
    await tab.waitForFunction(() => (window as any).seen.states.includes('open'))
    const connectionId = await tab.evaluate(() => (window as any).client.connectionId as string)
    t.equal(app.realtime.connection(connectionId)?.userId, 'cookie-user', 'the user came from the cookie')
    t.equal(await tab.evaluate(() => document.cookie), '', 'the page cannot read the token')
    await app.realtime.emit({ user: 'cookie-user' }, { type: 'agent:thought', data: { runId: 'r', content: 'hi' } })
    await tab.waitForFunction(() => (window as any).seen.events.length === 1)
    t.same(await tab.evaluate(() => (window as any).seen.events), ['user:cookie-user hi'], 'the subscriptions room was there')

    const before = statuses.length
    const evil = await browser.newPage()
    await evil.goto(`http://127.0.0.1:${foreignPort}`)
    await evil.waitForFunction(() => (window as any).seen.states.includes('reconnecting'))
    t.equal(statuses[before], 403, 'the foreign page was refused before the upgrade')
    t.equal(app.realtime.stats().connections, 1, 'only the allowed page is connected')
    await evil.evaluate(() => (window as any).client.close())
  }
)
