// Reconnect storm: N clients (default 1,000) hold a connection; the server drops them all at once (close 1012, a
// restart) and counts their new upgrades per second. Run once per `reconnect.spread` window to compare.
//
//   npx tsx bench/reconnect-storm.ts                         spreads 500 (the former first delay) and 2000 (the default)
//   npx tsx bench/reconnect-storm.ts --clients 1000 --spread 500,2000,5000 --json
//
// Everything runs on 127.0.0.1. The clients (the SDK over `ws`) live in a child process of their own, so that the
// server's work of closing and re-accepting them is not mixed with theirs.
import { type ChildProcess, fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createSigner } from 'fast-jwt'
import Fastify from 'fastify'
import WebSocket from 'ws'
import { createClient, type RealtimeClient } from '../src/client/index.js'
import realtime from '../src/index.js'

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    spread: { type: 'string', default: '500,2000' },
    json: { type: 'boolean', default: false }
  }
})
const count = Number(values.clients)
const spreads = String(values.spread).split(',').map(Number)
const secret = 'reconnect-storm-secret-that-is-long-enough!!'
const sign = createSigner({ key: secret })

interface Run {
  readonly spread: number
  readonly clients: number
  /** Upgrades per second after the drop: index 0 is [0 s, 1 s). */
  readonly perSecond: number[]
  /** The largest share of the clients that came back within one second. */
  readonly peakShare: number
  readonly lastMs: number
}

async function until(check: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** What the clients' process tells the server's. */
type FromClients = { kind: 'open'; ids: string[] } | { kind: 'reopened' }

/** The clients' process: opens `count` clients, reports their ids, then when they are all back after the drop. */
async function clientsProcess(url: string, spread: number): Promise<void> {
  const send = (message: FromClients) => (process.send as (m: unknown) => boolean)(message)
  const clients: RealtimeClient[] = []
  for (let i = 0; i < count; i++) {
    clients.push(
      createClient({
        url,
        token: sign({ sub: `user-${i}`, exp: Math.floor(Date.now() / 1000) + 3600 }),
        WebSocket: WebSocket as never,
        reconnect: { spread }
      })
    )
  }
  await until(() => clients.every((c) => c.state === 'open'), 60_000)
  const first = clients.map((c) => c.connectionId as string)
  send({ kind: 'open', ids: first })
  // Back once every client holds a new connection.
  await until(() => clients.every((c, i) => c.state === 'open' && c.connectionId !== first[i]), 60_000)
  send({ kind: 'reopened' })
  await once(process, 'message')
  for (const client of clients) client.close()
  process.exit(0)
}

async function run(spread: number): Promise<Run> {
  const app = Fastify()
  const upgrades: number[] = []
  app.addHook('onRequest', async (request) => {
    if (request.headers.upgrade !== undefined) upgrades.push(Date.now())
  })
  await app.register(realtime, {
    jwt: { secret },
    limits: { connections: count + 10, connectionsPerUser: count + 10 }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as { port: number }
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--clients', String(count)], {
    env: { ...process.env, STORM_URL: `ws://127.0.0.1:${port}/ws`, STORM_SPREAD: String(spread) },
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const messages: FromClients[] = []
  child.on('message', (m) => messages.push(m as FromClients))
  try {
    await until(() => messages.some((m) => m.kind === 'open'), 60_000)
    const { ids } = messages.find((m) => m.kind === 'open') as { ids: string[] }
    upgrades.length = 0
    const droppedAt = Date.now()
    for (const id of ids) app.realtime.connection(id)?.close(1012, 'restart')
    await until(() => upgrades.length >= count && messages.some((m) => m.kind === 'reopened'), 60_000)
    const perSecond: number[] = []
    for (const at of upgrades) {
      const second = Math.floor((at - droppedAt) / 1000)
      while (perSecond.length <= second) perSecond.push(0)
      perSecond[second] = (perSecond[second] as number) + 1
    }
    return {
      spread,
      clients: count,
      perSecond,
      peakShare: Math.max(...perSecond) / count,
      lastMs: Math.max(...upgrades) - droppedAt
    }
  } finally {
    const gone = once(child, 'exit')
    child.send('close')
    await gone
    await app.close()
  }
}

const runs: Run[] = []
if (process.env.STORM_URL !== undefined) await clientsProcess(process.env.STORM_URL, Number(process.env.STORM_SPREAD))
for (const spread of spreads) runs.push(await run(spread))
if (values.json) {
  process.stdout.write(`${JSON.stringify({ runs })}\n`)
} else {
  const width = Math.max(...runs.map((r) => r.perSecond.length))
  const head = Array.from({ length: width }, (_, s) => `${s}–${s + 1} s`)
  const lines = [
    `| spread | ${head.join(' | ')} | peak share | last |`,
    `| ---: | ${head.map(() => '---:').join(' | ')} | ---: | ---: |`,
    ...runs.map(
      (r) =>
        `| ${r.spread} ms | ${head.map((_, s) => r.perSecond[s] ?? 0).join(' | ')} | ${(r.peakShare * 100).toFixed(0)} % | ${r.lastMs} ms |`
    ),
    '',
    `${count} clients over ws on 127.0.0.1 in a process of their own, dropped at once with close 1012; upgrades counted`,
    'per second after the drop.',
    'Reproduce: `npx tsx bench/reconnect-storm.ts`',
    ''
  ]
  process.stdout.write(lines.join('\n'))
}
