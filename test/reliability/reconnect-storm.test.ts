// Reliability 14: 1,000 clients reconnecting after a server restart, spread by the backoff's jitter.
import Fastify, { type FastifyInstance } from 'fastify'
import t from 'tap'
import WebSocket from 'ws'
import { createClient, type RealtimeClient } from '../../src/client/index.js'
import realtime from '../../src/index.js'
import { until } from '../helpers/client.js'
import { SECRET, sign } from '../helpers/index.js'

const CLIENTS = 1000

// 7 s on a quiet 2-core machine; a loaded one may take minutes, which is no failure: the spread is reported.
t.setTimeout(900_000)

async function start(port: number, upgrades: number[]): Promise<FastifyInstance> {
  const app = Fastify()
  app.addHook('onRequest', async (request) => {
    if (request.url === '/ws') upgrades.push(Date.now())
  })
  await app.register(realtime, { jwt: { secret: SECRET } })
  await app.listen({ host: '127.0.0.1', port })
  return app
}

t.test(`${CLIENTS} clients after a server restart: all back and resubscribed, spread by jitter`, async (t) => {
  const first = await start(0, [])
  const port = (first.server.address() as { port: number }).port
  const clients: RealtimeClient[] = []
  for (let i = 0; i < CLIENTS; i++) {
    const token = sign(`user${i}`)
    const client = createClient({ url: `ws://127.0.0.1:${port}/ws`, WebSocket: WebSocket as never, token: () => token })
    client.subscribe(`user:user${i}`)
    clients.push(client)
  }
  t.teardown(() => {
    for (const c of clients) c.close()
  })
  await until(() => first.realtime.stats().subscriptions === CLIENTS, 300_000, 'every client subscribed')

  const upgrades: number[] = []
  const stopped = Date.now()
  await first.close()
  await new Promise((r) => setTimeout(r, 300))
  const second = await start(port, upgrades)
  t.teardown(() => second.close())
  await until(() => second.realtime.stats().subscriptions === CLIENTS, 300_000, 'every client back and resubscribed')
  const allBack = Date.now() - stopped

  const buckets = new Map<number, number>()
  for (const at of upgrades) buckets.set(Math.floor((at - stopped) / 1000), (buckets.get(Math.floor((at - stopped) / 1000)) ?? 0) + 1)
  const busiest = Math.max(...buckets.values())
  t.equal(second.realtime.stats().connections, CLIENTS, 'every client is back')
  t.ok(clients.every((c) => c.state === 'open'))
  t.ok(busiest < CLIENTS, 'the reconnects did not all land in one second')
  t.comment(
    `reliability/reconnect-storm: ${CLIENTS} clients back ${allBack} ms after the restart began; ${upgrades.length} upgrade attempts reached the new server; ` +
      `busiest second held ${((busiest / upgrades.length) * 100).toFixed(0)} % of them (per second: ${[...buckets.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}s:${n}`)
        .join(' ')}); 0 crashes`
  )
})
