// Cross-instance fan-out on Redis: two fastify-realtime instances with `redisAdapter` beside two Socket.IO 4
// instances with `@socket.io/redis-adapter`, on one Redis server of the benchmark's own. Each instance is a process
// of its own on 127.0.0.1; the clients live in a separate load process, spread evenly over the two instances of a
// contender, all in one room; one instance of each contender emits ~200-byte `agent:thought` events.
//
// One run of a contender: connect the clients, warm up, then
//   throughput  `events` events, at most `window` of them not yet delivered to every client at any time:
//               deliveries/s, server CPU per delivery (both instances), Redis commands and Redis CPU per emit;
//   latency     `latencyEvents` events at a steady `rate` per second: emit-to-receive p50, p99 and max, and the
//               server CPU per delivery when events come one at a time.
// After one unmeasured warm-up run of each, runs alternate between the contenders (AB BA AB …) for `reps`
// repetitions; the report gives medians and the ratio fastify-realtime / Socket.IO.
//
//   npm run bench:cluster                      writes bench/results/cluster.md and cluster.json
//   npm run bench:cluster -- --json            prints the JSON only, writes nothing
//   options: --clients 200 --events 2000 --window 32 --latency-events 300 --rate 100 --reps 4
//
// Redis: a redis-server (REDIS_SERVER, else `redis-server` on the PATH) started on a free port and stopped by PID
// afterwards; without the binary, REDIS_URL (its command counts then include whatever else uses that Redis).
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { CONTENDERS, type Contender, Peer, type Phase } from './common.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const here = fileURLToPath(new URL('.', import.meta.url))

const { values: argv } = parseArgs({
  options: {
    clients: { type: 'string', default: '200' },
    events: { type: 'string', default: '2000' },
    window: { type: 'string', default: '32' },
    'latency-events': { type: 'string', default: '300' },
    rate: { type: 'string', default: '100' },
    reps: { type: 'string', default: '4' },
    json: { type: 'boolean', default: false }
  }
})

function positive(name: keyof typeof argv): number {
  const n = Number(argv[name])
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer (got "${argv[name]}")`)
  return n
}

const config = {
  clients: positive('clients'),
  events: positive('events'),
  window: positive('window'),
  latencyEvents: positive('latency-events'),
  rate: positive('rate'),
  reps: positive('reps'),
  /** Events of each run's warm-up, before its throughput phase. */
  warmup: Math.min(50, positive('events'))
}

/** A phase that has not finished after this long counts what arrived; the missing deliveries are reported as lost. */
const PHASE_TIMEOUT_MS = 60_000

const log = (line: string) => process.stderr.write(`${line}\n`)

// Processes: every one of them is stopped by its PID at the end, whatever happens.
const children: ChildProcess[] = []
function stopAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
}
process.once('exit', stopAll)
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stopAll()
    process.exit(130)
  })
}

// However a run goes wrong, the benchmark ends: each phase gives up after PHASE_TIMEOUT_MS, the whole after this.
const OVERALL_TIMEOUT_MS = 10 * 60_000
setTimeout(() => {
  log(`the benchmark took longer than ${OVERALL_TIMEOUT_MS / 60_000} minutes: stopped`)
  process.exit(1)
}, OVERALL_TIMEOUT_MS).unref()

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

interface RedisHandle {
  readonly url: string
  readonly version: string
  readonly admin: Redis
  stop(): Promise<void>
}

async function startRedis(): Promise<RedisHandle> {
  const binary = process.env.REDIS_SERVER ?? 'redis-server'
  const own = spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0
  let child: ChildProcess | undefined
  let url = process.env.REDIS_URL
  if (own) {
    const port = await freePort()
    url = `redis://127.0.0.1:${port}`
    child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
    children.push(child)
  } else if (url === undefined) {
    throw new Error('the cluster benchmark needs Redis: install redis-server (Debian package redis-server) or set REDIS_URL')
  } else {
    log(`no redis-server binary: using REDIS_URL; its command counts include whatever else uses that Redis`)
  }
  const admin = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: (n) => (n > 100 ? null : 50) })
  admin.on('error', () => {})
  // A freshly spawned redis-server takes a moment to listen: wait for the connection itself rather than let the
  // first command spend its single retry on a refused connect.
  await new Promise<void>((resolve, reject) => {
    admin.once('ready', resolve)
    admin.once('end', () => reject(new Error(`Redis at ${url} did not answer within 5 s`)))
  })
  const version = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? 'unknown'
  return {
    url,
    version,
    admin,
    async stop() {
      admin.disconnect()
      if (child === undefined || child.exitCode !== null) return
      const gone = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await gone
    }
  }
}

function start(file: string, args: string[], env: Record<string, string>): ChildProcess {
  const child = fork(join(here, file), args, {
    execArgv: ['--import', 'tsx', '--unhandled-rejections=strict'],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.push(child)
  return child
}

interface ServerPeer {
  readonly peer: Peer
  readonly url: string
}

async function startServers(contender: Contender, env: Record<string, string>): Promise<[ServerPeer, ServerPeer]> {
  const one = async (i: number): Promise<ServerPeer> => {
    const peer = new Peer(`${contender} #${i + 1}`, start('server.ts', [contender], env))
    const { port } = await peer.call<{ port: number }>('ready')
    return { peer, url: `ws://127.0.0.1:${port}` }
  }
  return Promise.all([one(0), one(1)])
}

/** Redis's per-command call counts (commands run by a script are counted too, each by its name) and its CPU, µs. */
async function redisStats(admin: Redis): Promise<{ calls: Record<string, number>; cpu: number }> {
  const calls: Record<string, number> = {}
  for (const match of (await admin.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls[match[1] as string] = Number(match[2])
  }
  const info = await admin.info('cpu')
  const seconds = (key: string) => Number(new RegExp(`^${key}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0)
  return { calls, cpu: (seconds('used_cpu_user') + seconds('used_cpu_sys')) * 1e6 }
}

interface LoadResult {
  deliveries: number
  expected: number
  seconds: number
  loadCoreShare: number
  latency?: { p50: number; p99: number; max: number }
}

export interface Run {
  contender: Contender
  rep: number
  deliveriesPerSec: number
  latency: { p50: number; p99: number; max: number }
  /** Server CPU (user + system) of both instances per delivery in the throughput phase, µs. */
  cpuPerDelivery: number
  /** The same in the latency phase, at a steady rate: events come one at a time rather than in bursts. */
  cpuPerDeliverySteady: number
  redisCommandsPerEmit: number
  /** Per command name, calls per emit (rounded to 0.01). */
  redisCommands: Record<string, number>
  redisCpuPerEmit: number
  /** Deliveries that did not arrive before the phase timed out, over all phases. */
  lost: number
  emitErrors: number
  /** CPU the load process used during the throughput phase, as a share of one core. */
  loadCoreShare: number
}

class Bench {
  private emitter: Peer | undefined

  constructor(
    private readonly load: Peer,
    private readonly servers: Record<Contender, [ServerPeer, ServerPeer]>,
    private readonly redis: RedisHandle
  ) {
    // The load process says how many events every client has; the emitting instance keeps its window from that.
    load.on('delivered', (n: number) => this.emitter?.notify('delivered', n))
  }

  private async phase(contender: Contender, phase: Phase, latency = false): Promise<LoadResult & { emitErrors: number }> {
    this.emitter = this.servers[contender][0].peer
    await this.load.call('expect', { phase, latency })
    await this.emitter.call('start', phase)
    const result = await this.load.call<LoadResult>('wait', { timeoutMs: PHASE_TIMEOUT_MS })
    const { errors } = await this.emitter.call<{ errors: number }>('finish')
    this.emitter = undefined
    return { ...result, emitErrors: errors }
  }

  private cpu(contender: Contender): Promise<number[]> {
    return Promise.all(this.servers[contender].map(({ peer }) => peer.call<number>('cpu')))
  }

  /** One run; `sizes` overrides the configured counts (the unmeasured warm-up run uses fewer events). */
  async run(contender: Contender, rep: number, sizes: Partial<typeof config> = {}): Promise<Run> {
    const { clients, events, window, latencyEvents, rate, warmup } = { ...config, ...sizes }
    await this.load.call('connect', { contender, urls: this.servers[contender].map((s) => s.url), clients })
    const warm = await this.phase(contender, { tag: `warm-${rep}`, count: warmup, window })

    const cpuBefore = await this.cpu(contender)
    const redisBefore = await redisStats(this.redis.admin)
    const tp = await this.phase(contender, { tag: `throughput-${rep}`, count: events, window })
    const cpuAfter = await this.cpu(contender)
    const redisAfter = await redisStats(this.redis.admin)

    const lat = await this.phase(contender, { tag: `latency-${rep}`, count: latencyEvents, rate }, true)
    const cpuSteady = await this.cpu(contender)
    await this.load.call('disconnect')

    const commands: Record<string, number> = {}
    let total = 0
    for (const [name, calls] of Object.entries(redisAfter.calls)) {
      // The benchmark's own INFO calls are not the contender's.
      const delta = calls - (redisBefore.calls[name] ?? 0)
      if (name === 'info' || delta === 0) continue
      commands[name] = Math.round((delta / events) * 100) / 100
      total += delta
    }
    const spent = (from: number[], to: number[]) => to.reduce((sum, t, i) => sum + t - (from[i] as number), 0)
    return {
      contender,
      rep,
      deliveriesPerSec: tp.deliveries / tp.seconds,
      latency: lat.latency as Run['latency'],
      cpuPerDelivery: spent(cpuBefore, cpuAfter) / tp.deliveries,
      cpuPerDeliverySteady: spent(cpuAfter, cpuSteady) / lat.deliveries,
      redisCommandsPerEmit: total / events,
      redisCommands: commands,
      redisCpuPerEmit: (redisAfter.cpu - redisBefore.cpu) / events,
      lost: [warm, tp, lat].reduce((sum, r) => sum + r.expected - r.deliveries, 0),
      emitErrors: warm.emitErrors + tp.emitErrors + lat.emitErrors,
      loadCoreShare: tp.loadCoreShare
    }
  }
}

const round1 = (n: number): number => Math.round(n * 10) / 10

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

export interface Summary {
  deliveriesPerSec: number
  latencyP50: number
  latencyP99: number
  latencyMax: number
  cpuPerDelivery: number
  cpuPerDeliverySteady: number
  redisCommandsPerEmit: number
  redisCpuPerEmit: number
  lost: number
}

function summarize(runs: Run[]): Summary {
  const m = (f: (r: Run) => number) => median(runs.map(f))
  return {
    deliveriesPerSec: m((r) => r.deliveriesPerSec),
    latencyP50: m((r) => r.latency.p50),
    latencyP99: m((r) => r.latency.p99),
    latencyMax: m((r) => r.latency.max),
    cpuPerDelivery: m((r) => r.cpuPerDelivery),
    cpuPerDeliverySteady: m((r) => r.cpuPerDeliverySteady),
    redisCommandsPerEmit: m((r) => r.redisCommandsPerEmit),
    redisCpuPerEmit: m((r) => r.redisCpuPerEmit),
    lost: runs.reduce((sum, r) => sum + r.lost, 0)
  }
}

const versionOf = (pkg: string): string =>
  JSON.parse(readFileSync(join(root, pkg === '.' ? '' : `node_modules/${pkg}`, 'package.json'), 'utf8')).version

async function main(): Promise<void> {
  const started = Date.now()
  const loadBefore = loadavg()[0] as number
  const redis = await startRedis()
  const env = { BENCH_REDIS_URL: redis.url, BENCH_JWT_SECRET: randomBytes(32).toString('hex') }
  const load = new Peer('load', start('load.ts', [], env))
  const [ours, theirs] = await Promise.all(CONTENDERS.map((c) => startServers(c, env)))
  const bench = new Bench(load, { 'fastify-realtime': ours!, 'socket.io': theirs! }, redis)
  const runs: Run[] = []
  try {
    // One unmeasured run per contender first: the JIT has compiled the hot paths of every process before rep 1.
    for (const contender of CONTENDERS) {
      log(`warm-up ${contender}`)
      await bench.run(contender, 0, { events: Math.ceil(config.events / 4), latencyEvents: Math.ceil(config.latencyEvents / 4) })
    }
    for (let rep = 1; rep <= config.reps; rep++) {
      // AB, BA, …: each contender goes first as often as the other, so drift over time does not favour one.
      const order = rep % 2 === 1 ? CONTENDERS : [...CONTENDERS].reverse()
      for (const contender of order) {
        const run = await bench.run(contender, rep)
        runs.push(run)
        log(
          `rep ${rep} ${contender.padEnd(16)} ${Math.round(run.deliveriesPerSec).toLocaleString('en-US')} deliveries/s, ` +
            `p50 ${run.latency.p50.toFixed(2)} ms, ${run.cpuPerDelivery.toFixed(2)} µs CPU/delivery, ` +
            `${run.redisCommandsPerEmit.toFixed(2)} Redis commands/emit, lost ${run.lost}`
        )
      }
    }
  } finally {
    await Promise.all([...ours!, ...theirs!].map(({ peer }) => peer.call('close').catch(() => undefined)))
    await load.call('exit').catch(() => undefined)
    await redis.stop()
  }
  const summary = Object.fromEntries(CONTENDERS.map((c) => [c, summarize(runs.filter((r) => r.contender === c))])) as Record<
    Contender,
    Summary
  >
  const a = summary['fastify-realtime']
  const b = summary['socket.io']
  const ratio = Object.fromEntries((Object.keys(a) as (keyof Summary)[]).filter((k) => k !== 'lost').map((k) => [k, a[k] / b[k]])) as Omit<
    Summary,
    'lost'
  >
  const result = {
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 100) / 10,
    machine: {
      node: process.versions.node,
      cpus: cpus().length,
      cpu: cpus()[0]?.model ?? 'unknown',
      // The 1-minute load average before and after: other work on the machine skews every figure.
      loadavg: { before: round1(loadBefore), after: round1(loadavg()[0] as number) }
    },
    versions: {
      'fastify-realtime': versionOf('.'),
      fastify: versionOf('fastify'),
      'socket.io': versionOf('socket.io'),
      '@socket.io/redis-adapter': versionOf('@socket.io/redis-adapter'),
      ioredis: versionOf('ioredis'),
      ws: versionOf('ws'),
      redis: redis.version
    },
    config,
    summary,
    ratio,
    runs
  }
  if (argv.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`)
    return
  }
  const md = markdown(result)
  await mkdir(join(root, 'bench/results'), { recursive: true })
  await writeFile(join(root, 'bench/results/cluster.json'), `${JSON.stringify(result, null, 2)}\n`)
  await writeFile(join(root, 'bench/results/cluster.md'), md)
  process.stdout.write(md)
}

type Result = {
  date: string
  seconds: number
  machine: { node: string; cpus: number; cpu: string; loadavg: { before: number; after: number } }
  versions: Record<string, string>
  config: typeof config
  summary: Record<Contender, Summary>
  ratio: Omit<Summary, 'lost'>
  runs: Run[]
}

const int = (n: number) => Math.round(n).toLocaleString('en-US')
const fixed = (digits: number) => (n: number) => n.toFixed(digits)
const times = (n: number) => `${n.toFixed(2)}×`

function markdown(r: Result): string {
  const rows: [string, keyof Summary & keyof Result['ratio'], (n: number) => string, string][] = [
    ['Deliveries/s', 'deliveriesPerSec', int, 'higher'],
    ['Latency p50 (ms)', 'latencyP50', fixed(2), 'lower'],
    ['Latency p99 (ms)', 'latencyP99', fixed(2), 'lower'],
    ['Latency max (ms)', 'latencyMax', fixed(2), 'lower'],
    ['Server CPU per delivery, both instances, throughput (µs)', 'cpuPerDelivery', fixed(2), 'lower'],
    ['Server CPU per delivery, both instances, steady rate (µs)', 'cpuPerDeliverySteady', fixed(2), 'lower'],
    ['Redis commands per emit', 'redisCommandsPerEmit', fixed(2), 'lower'],
    ['Redis CPU per emit (µs)', 'redisCpuPerEmit', fixed(1), 'lower']
  ]
  const ours = r.summary['fastify-realtime']
  const theirs = r.summary['socket.io']
  const commands = (c: Contender) => {
    const run = r.runs.find((x) => x.contender === c)
    return Object.entries(run?.redisCommands ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, n]) => `${name} ${n}`)
      .join(', ')
  }
  const c = r.config
  return [
    `| | fastify-realtime ${r.versions['fastify-realtime']} | Socket.IO ${r.versions['socket.io']} | ratio | better |`,
    '| --- | ---: | ---: | ---: | :---: |',
    ...rows.map(
      ([label, key, format, better]) => `| ${label} | ${format(ours[key])} | ${format(theirs[key])} | ${times(r.ratio[key])} | ${better} |`
    ),
    '',
    `Medians of ${c.reps} interleaved repetitions; ratio = fastify-realtime ÷ Socket.IO. ` +
      `${c.clients} clients on 2 instances per contender, one room, ~200-byte \`agent:thought\` events emitted from one instance. ` +
      `Throughput: ${int(c.events)} events, at most ${c.window} not yet delivered everywhere; latency: ${int(c.latencyEvents)} events at ${c.rate}/s.`,
    `Lost deliveries: fastify-realtime ${ours.lost}, Socket.IO ${theirs.lost}.`,
    `Redis commands per emit (one run): fastify-realtime ${commands('fastify-realtime')}; Socket.IO ${commands('socket.io')}.`,
    '',
    'Every run, in the order run:',
    '',
    '| rep | contender | deliveries/s | p50 (ms) | p99 (ms) | max (ms) | CPU/delivery (µs) | CPU/delivery steady (µs) | load process (cores) |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.runs.map(
      (x) =>
        `| ${x.rep} | ${x.contender} | ${int(x.deliveriesPerSec)} | ${x.latency.p50.toFixed(2)} | ${x.latency.p99.toFixed(2)} | ` +
        `${x.latency.max.toFixed(2)} | ${x.cpuPerDelivery.toFixed(2)} | ${x.cpuPerDeliverySteady.toFixed(2)} | ${x.loadCoreShare.toFixed(2)} |`
    ),
    '',
    `${r.date.slice(0, 10)}, Node ${r.machine.node}, ${r.machine.cpus} × ${r.machine.cpu} ` +
      `(1-minute load average ${r.machine.loadavg.before} before, ${r.machine.loadavg.after} after), Redis ${r.versions.redis}; ` +
      `fastify ${r.versions.fastify}, @socket.io/redis-adapter ${r.versions['@socket.io/redis-adapter']}, ioredis ${r.versions.ioredis}, ws ${r.versions.ws}. ` +
      `Took ${r.seconds} s. Reproduce: \`npm run bench:cluster\``,
    ''
  ].join('\n')
}

await main()
