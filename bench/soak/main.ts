// npm run bench:soak -- --minutes 3 --clients 500
// Churn against one server process: clients connect, subscribe, receive emits and token streams, answer questions,
// and reconnect (resuming) at random. The server's heap and RSS are sampled every 10 s; after the first third
// (warm-up) the report says whether they stayed within 10 % of their post-warm-up mean.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createSigner } from 'fast-jwt'
import WebSocket from 'ws'

const SECRET = 'soak-secret-that-is-long-enough-for-hs256!!'
const flag = (name: string, fallback: number): number => {
  const at = process.argv.indexOf(`--${name}`)
  return at === -1 ? fallback : Number(process.argv[at + 1])
}

if (process.argv.includes('--server')) {
  const { default: Fastify } = await import('fastify')
  const { default: realtime } = await import('../../src/index.js')
  const app = Fastify()
  await app.register(realtime, {
    jwt: { secret: SECRET },
    authorize: () => true,
    limits: { connectionsPerUser: 64, messagesPerSecond: 100 }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const rooms = 50
  let n = 0
  // Load: an emit per room every 200 ms, a token stream and a question every second.
  setInterval(() => {
    for (let r = 0; r < rooms; r++)
      app.realtime.emit(`soak:${r}`, { type: 'agent:thought', data: { runId: 'r', content: `e${n++}` } }).catch(() => {})
  }, 200)
  setInterval(async () => {
    const stream = app.realtime.stream(`soak:${n % rooms}`, { type: 'agent:thought', data: { runId: 'r', content: '' } })
    for (let i = 0; i < 20; i++) stream.append('tok ')
    await stream.end().catch(() => {})
    app.realtime
      .ask({ user: `u${n % 100}` }, { type: 'hitl_request', data: { requestId: `q${n}`, question: 'ok?' } }, { timeout: 2000 })
      .catch(() => {})
  }, 1000)
  setInterval(() => {
    if (global.gc) global.gc()
    const m = process.memoryUsage()
    process.send?.({ heap: m.heapUsed, rss: m.rss, connections: app.realtime.stats().connections })
  }, 10_000)
  process.send?.({ port: (app.server.address() as { port: number }).port })
} else {
  const minutes = flag('minutes', 10)
  const clients = flag('clients', 2000)
  const child = fork(fileURLToPath(import.meta.url), ['--server'], { execArgv: ['--import', 'tsx', '--expose-gc'] })
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)))
  const samples: { heap: number; rss: number; connections: number }[] = []
  child.on('message', (m: { heap?: number; rss: number; connections: number }) => {
    if (m.heap === undefined) return
    samples.push(m as { heap: number; rss: number; connections: number })
    console.log(
      `${samples.length * 10}s heap ${(m.heap / 2 ** 20).toFixed(1)} MiB rss ${(m.rss / 2 ** 20).toFixed(1)} MiB connections ${m.connections}`
    )
  })
  const sign = createSigner({ key: SECRET, expiresIn: 3_600_000 })
  let stopping = false
  const run = (i: number): void => {
    if (stopping) return
    const user = `u${i % 100}`
    const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, { headers: { authorization: `Bearer ${sign({ sub: user })}` } })
    const room = `soak:${i % 50}`
    ws.on('message', (raw) => {
      const frames = [JSON.parse(String(raw))].flat() as { type: string; id?: string; room?: string }[]
      for (const f of frames) {
        if (f.type === 'ready') {
          ws.send(JSON.stringify({ type: 'subscribe', id: 's', room }))
          ws.send(JSON.stringify({ type: 'subscribe', id: 'u', room: `user:${user}` }))
        }
        if (f.type === 'hitl_request' && f.id !== undefined)
          ws.send(JSON.stringify({ type: 'reply', id: f.id, room: f.room, data: { ok: true } }))
      }
    })
    ws.on('error', () => {})
    ws.on('close', () => setTimeout(() => run(i), 100 + Math.random() * 400))
    // Reconnect churn: each client lives 5 to 60 s.
    setTimeout(() => ws.close(), 5_000 + Math.random() * 55_000)
  }
  for (let i = 0; i < clients; i++) setTimeout(() => run(i), (i / clients) * 5_000)
  await new Promise((resolve) => setTimeout(resolve, minutes * 60_000))
  stopping = true
  const after = samples.slice(Math.ceil(samples.length / 3))
  // A leak shows as growth: the most a sample rose above the mean, and the trend over the run (least squares). A dip
  // below the mean follows the connection count, which the churn (and a loaded machine) moves.
  const report = (key: 'heap' | 'rss') => {
    const values = after.map((s) => s[key])
    const mean = values.reduce((a, b) => a + b, 0) / values.length
    const spread = Math.max(...values.map((v) => Math.abs(v - mean) / mean))
    const above = Math.max(...values.map((v) => (v - mean) / mean))
    const mid = (values.length - 1) / 2
    const slope = values.reduce((sum, v, i) => sum + (i - mid) * (v - mean), 0) / values.reduce((sum, _v, i) => sum + (i - mid) ** 2, 0)
    return {
      meanMiB: +(mean / 2 ** 20).toFixed(1),
      maxDeviation: `${(spread * 100).toFixed(1)} %`,
      maxAbove: `${(above * 100).toFixed(1)} %`,
      trendMiBPerMinute: +((slope * 6) / 2 ** 20).toFixed(2),
      within10: spread <= 0.1
    }
  }
  const counts = after.map((s) => s.connections)
  const connections = { min: Math.min(...counts), max: Math.max(...counts) }
  console.log(JSON.stringify({ minutes, clients, samples: samples.length, connections, heap: report('heap'), rss: report('rss') }))
  child.kill()
  process.exit(0)
}
