// Prometheus metrics: scraped over HTTP from a listening app while real clients connect, talk, fail and leave.
import { Type } from '@sinclair/typebox'
import Fastify, { type FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import t from 'tap'
import realtime from '../src/index.js'
import { createMetrics } from '../src/server/metrics.js'
import { until } from './helpers/client.js'
import { buildApp, connect, refused, SECRET, sign } from './helpers/index.js'

async function scrape(app: FastifyInstance, path = '/metrics'): Promise<{ status: number; type: string | null; text: string }> {
  const { port } = app.server.address() as { port: number }
  const res = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
}

/** The value of one sample line, e.g. `value(text, 'realtime_closes_total{code="1000"}')`. */
function value(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `))
  return line === undefined ? undefined : Number(line.slice(sample.length + 1))
}

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r', content } })

t.test('metrics: true serves /metrics, and the figures move with what clients do', async (t) => {
  const app = await buildApp(t, { authorize: () => true, metrics: true })
  app.realtime.handle('note', Type.Object({ text: Type.String() }), () => 'noted')
  let m = await scrape(app)
  t.equal(m.status, 200)
  t.match(m.type, /^text\/plain/)
  t.equal(value(m.text, 'realtime_connections'), 0)
  t.match(m.text, /# HELP realtime_messages_sent_total /)

  const a = await connect(app, 'ann')
  const b = await connect(app, 'bob')
  await a.subscribe('r')
  await b.subscribe('r')
  for (const n of ['1', '2', '3']) await app.realtime.emit('r', thought(n))
  await a.collect('agent:thought', 3)
  await b.collect('agent:thought', 3)
  await a.call({ type: 'ping' })
  t.equal((await a.call({ type: 'note', data: { text: 'hi' } })).type, 'ack')
  t.equal((await a.call({ type: 'no-such-type' })).data.code, 'unknown_type')
  a.send('{not json')
  t.equal((await a.next('error')).data.code, 'invalid_json')
  a.ws.send(Buffer.from('{}'), { binary: true })
  t.equal((await a.next('error')).data.code, 'invalid_json')
  a.send('{"type":1}')
  t.equal((await a.next('error')).data.code, 'invalid_message')
  t.equal((await refused(app, 'x', { token: null })).status, 401)
  t.equal((await refused(app, 'x', { token: sign('x', { exp: Math.floor(Date.now() / 1000) - 60 }) })).status, 401)
  t.equal((await refused(app, 'x', { headers: { origin: 'https://evil.example' } })).status, 403)
  b.ws.close(1000)
  await b.closed
  await until(() => app.realtime.stats().connections === 1, 5000, 'the server to see the close')

  m = await scrape(app)
  const expected: Array<[string, number]> = [
    ['realtime_connections', 1],
    ['realtime_subscriptions', 1],
    ['realtime_rooms', 1],
    ['realtime_pending_requests', 0],
    ['realtime_messages_received_total{type="subscribe"}', 2],
    ['realtime_messages_received_total{type="ping"}', 1],
    ['realtime_messages_received_total{type="note"}', 1],
    ['realtime_messages_received_total{type="unknown"}', 1],
    ['realtime_messages_received_total{type="invalid"}', 3],
    ['realtime_messages_sent_total{type="agent:thought"}', 6],
    ['realtime_messages_sent_total{type="ready"}', 2],
    ['realtime_messages_sent_total{type="subscribed"}', 2],
    ['realtime_messages_sent_total{type="pong"}', 1],
    ['realtime_messages_sent_total{type="ack"}', 1],
    ['realtime_messages_sent_total{type="error"}', 4],
    ['realtime_errors_total{code="unknown_type"}', 1],
    ['realtime_errors_total{code="invalid_json"}', 2],
    ['realtime_errors_total{code="invalid_message"}', 1],
    ['realtime_auth_failures_total{reason="missing"}', 1],
    ['realtime_auth_failures_total{reason="expired"}', 1],
    ['realtime_auth_failures_total{reason="origin"}', 1],
    ['realtime_closes_total{code="1000"}', 1],
    ['realtime_fanout_recipients_count', 3],
    ['realtime_fanout_recipients_sum', 6],
    ['realtime_emit_to_write_seconds_count', 3],
    ['realtime_dropped_volatile', 0]
  ]
  for (const [sample, n] of expected) t.equal(value(m.text, sample), n, sample)
})

t.test('metrics into a given registry, with a prefix, and without a route', async (t) => {
  const registry = new Registry()
  const app = await buildApp(t, { authorize: () => true, metrics: { registry, prefix: 'chat_', route: false } })
  const c = await connect(app)
  await c.subscribe('r')
  t.equal((await scrape(app)).status, 404, 'no route')
  const text = await registry.metrics()
  t.equal(value(text, 'chat_connections'), 1)
  t.equal(value(text, 'chat_messages_received_total{type="subscribe"}'), 1)

  const bare = await buildApp(t, { metrics: new Registry() })
  t.equal((await scrape(bare)).status, 200, 'a Registry alone gets the default route')
})

t.test('an app that already serves /metrics keeps its route', async (t) => {
  const app = Fastify()
  app.get('/metrics', async () => 'the app’s own')
  await app.register(realtime, { jwt: { secret: SECRET }, metrics: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  t.equal((await scrape(app)).text, 'the app’s own')
})

t.test('bad metrics options are refused at registration', async (t) => {
  const cases: Array<[unknown, RegExp]> = [
    ['yes', /option "metrics" must be an object \(got string\)/],
    [{ registry: {} }, /option "metrics.registry" must be a prom-client Registry/],
    [{ prefix: '1bad' }, /option "metrics.prefix" must be a Prometheus metric name prefix/],
    [{ prefix: 3 }, /option "metrics.prefix" must be a Prometheus metric name prefix/],
    [{ route: 'metrics' }, /option "metrics.route" must be false or a path starting with "\/"/],
    [{ route: 5 }, /option "metrics.route" must be false or a path starting with "\/"/]
  ]
  for (const [metrics, message] of cases) {
    const app = Fastify()
    await t.rejects(
      (async () => {
        await app.register(realtime, { jwt: { secret: SECRET }, metrics } as never)
        await app.ready()
      })(),
      { code: 'FST_REALTIME_INVALID_OPTION', message },
      JSON.stringify(metrics)
    )
    await app.close()
  }
})

t.test('without prom-client, metrics say what to install; a frame without a readable ts is left out of the latency', async (t) => {
  const settings = { registry: undefined, prefix: 'x_', route: false as const }
  const stats = () => ({
    connections: 0,
    rooms: 0,
    subscriptions: 0,
    messagesIn: 0,
    messagesOut: 0,
    errors: 0,
    dropped: 0,
    pendingRequests: 0
  })
  await t.rejects(
    createMetrics(settings, stats, () => Promise.reject(new Error("Cannot find package 'prom-client'"))),
    { code: 'FST_REALTIME_INVALID_OPTION', message: /needs prom-client: npm install prom-client/ }
  )
  const metrics = await createMetrics(settings, stats)
  metrics.delivered(2, Number.NaN)
  const text = await metrics.registry.metrics()
  t.equal(value(text, 'x_fanout_recipients_count'), 1)
  t.equal(value(text, 'x_emit_to_write_seconds_count'), 0)
})
