// Server fan-out benchmark: fastify-realtime beside raw `ws` (three ways), @fastify/websocket and Socket.IO.
// Every contender runs as its own server process on 127.0.0.1 and is driven by a separate load process; runs are
// interleaved (every contender once per scenario per repetition, in a rotating order) and the figures are medians.
//
//   npm run bench                         the full default run (about 10 minutes on 2 cores); writes
//                                         bench/results/server.md and server.json
//   npm run bench -- --help               every option
//
// See bench/README.md for what is measured and how to read it.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, loadavg, totalmem } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { build } from 'esbuild'
import { COALESCE_ENV, requester } from './common.js'
import { topOfProfile } from './profile.js'
import { type Contender, markdown, type Run, type Scenario, summarize } from './report.js'

const root = fileURLToPath(new URL('../..', import.meta.url))

export const contenders: readonly Contender[] = [
  { id: 'realtime', name: 'fastify-realtime', protocol: 'realtime' },
  { id: 'ws-json', name: 'ws: stringify once, send per socket', protocol: 'plain' },
  { id: 'ws-frame', name: 'ws: one pre-framed buffer (the limit)', protocol: 'plain' },
  { id: 'ws-coalesce', name: 'ws: pre-framed + coalesced writes (the target)', protocol: 'plain' },
  { id: 'fastify-ws', name: '@fastify/websocket: stringify per socket', protocol: 'plain' },
  { id: 'socketio', name: 'Socket.IO 4 (WebSocket only)', protocol: 'socketio' },
  { id: 'realtime-sse', name: 'fastify-realtime over SSE', protocol: 'sse', server: 'realtime' }
]

export const scenarios: readonly Scenario[] = [
  { id: 'burst-1000', kind: 'burst', title: '1,000 clients × 200 events, as fast as possible', clients: 1000, events: 200 },
  { id: 'burst-100', kind: 'burst', title: '100 clients × 2,000 events, as fast as possible', clients: 100, events: 2000 },
  { id: 'paced', kind: 'paced', title: '1,000 clients at 50 events/s (50,000 deliveries/s)', clients: 1000, events: 250, perSecond: 50 },
  { id: 'idle', kind: 'idle', title: '5,000 idle authenticated connections, subscribed', clients: 5000 },
  { id: 'connect', kind: 'connect', title: 'Connect rate with JWT verification: 1,000 connections', clients: 1000 }
]

const usage = `npm run bench -- [options]

  --reps <n>            repetitions; figures are medians (default 3)
  --only <ids>          contenders, comma separated: ${contenders.map((c) => c.id).join(', ')}
  --scenarios <ids>     scenarios, comma separated: ${scenarios.map((s) => s.id).join(', ')}
  --scale <f>           multiplies every client, connection and event count (default 1; 0.02 is a smoke run)
  --batch <n>           events a burst emits between two turns of the event loop (default 10)
  --concurrency <n>     connections the load process opens at once (default 100)
  --timeout <s>         longest wait for any one step (default 120)
  --out <dir>           where server.md and server.json go (default bench/results)
  --note <text>         a line about the machine, written into the results
  --realtime-coalesce <on|off>
                        fastify-realtime's write coalescing (\`coalesce\`; default on, its default)
  --cpu-prof            run the fastify-realtime server with --cpu-prof; one profile per run, and a summary of each
  --cpu-prof-dir <dir>  where the profiles go (default bench/results/profiles)
  --render              run nothing: write server.md again from the server.json in --out
  --help`

interface Options {
  reps: number
  only: readonly Contender[]
  scenarios: readonly Scenario[]
  scale: number
  batch: number
  concurrency: number
  timeoutMs: number
  out: string
  note: string | undefined
  /** fastify-realtime registered with its default \`coalesce\` (true) or with \`coalesce: false\`. */
  realtimeCoalesce: boolean
  cpuProf: string | undefined
  render: boolean
}

function pick<T extends { id: string }>(all: readonly T[], list: string | undefined, what: string): T[] {
  if (list === undefined) return [...all]
  return list.split(',').map((id) => {
    const found = all.find((x) => x.id === id.trim())
    if (found === undefined) throw new Error(`unknown ${what} "${id}": one of ${all.map((x) => x.id).join(', ')}`)
    return found
  })
}

function number(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!(n > 0)) throw new Error(`--${name} must be a positive number (got ${value})`)
  return n
}

function options(argv: string[]): Options | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      reps: { type: 'string' },
      only: { type: 'string' },
      scenarios: { type: 'string' },
      scale: { type: 'string' },
      batch: { type: 'string' },
      concurrency: { type: 'string' },
      timeout: { type: 'string' },
      out: { type: 'string' },
      note: { type: 'string' },
      'realtime-coalesce': { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      'cpu-prof-dir': { type: 'string' },
      render: { type: 'boolean' },
      help: { type: 'boolean' }
    }
  })
  if (values.help === true) return undefined
  const coalesce = values['realtime-coalesce'] ?? 'on'
  if (coalesce !== 'on' && coalesce !== 'off') throw new Error(`--realtime-coalesce must be on or off (got ${coalesce})`)
  return {
    reps: Math.round(number(values.reps, 3, 'reps')),
    only: pick(contenders, values.only, 'contender'),
    scenarios: pick(scenarios, values.scenarios, 'scenario'),
    scale: number(values.scale, 1, 'scale'),
    batch: Math.round(number(values.batch, 10, 'batch')),
    concurrency: Math.round(number(values.concurrency, 100, 'concurrency')),
    timeoutMs: number(values.timeout, 120, 'timeout') * 1000,
    out: values.out ?? join(root, 'bench/results'),
    note: values.note,
    realtimeCoalesce: coalesce === 'on',
    cpuProf: values['cpu-prof'] === true ? (values['cpu-prof-dir'] ?? join(root, 'bench/results/profiles')) : undefined,
    render: values.render === true
  }
}

/** Profiles are taken of fastify-realtime only, one per scenario and repetition. */
const profileName = (s: Scenario, rep: number) => `realtime-${s.id}-rep${rep}.cpuprofile`

const scaled = (n: number, scale: number) => Math.max(1, Math.round(n * scale))

/** Compiles the servers and the load process to plain JavaScript, so the measured processes run no TypeScript loader. */
async function compile(dir: string): Promise<void> {
  await build({
    entryPoints: [
      ...new Set(contenders.map((c) => join(root, `bench/fanout/contenders/${c.server ?? c.id}.ts`))),
      join(root, 'bench/fanout/load.ts')
    ],
    outdir: dir,
    outbase: join(root, 'bench/fanout'),
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error'
  })
}

/** The soft and hard limits on open files, where a shell can tell (null elsewhere). */
function fileLimits(): { soft: number; hard: number } | null {
  try {
    const out = execFileSync('/bin/sh', ['-c', 'ulimit -Sn; ulimit -Hn'], { encoding: 'utf8' }).trim().split('\n')
    const read = (s: string | undefined) => (s === 'unlimited' ? Number.POSITIVE_INFINITY : Number(s))
    return { soft: read(out[0]), hard: read(out[1]) }
  } catch {
    return null
  }
}

interface Child {
  readonly process: ChildProcess
  readonly call: <T>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number) => Promise<T>
}

/**
 * Starts a node process with an IPC channel; raises its soft limit on open files to `files` when needed. `env` is
 * added to this process's environment.
 */
function start(
  file: string,
  flags: string[],
  files: number,
  limits: ReturnType<typeof fileLimits>,
  name: string,
  env: Record<string, string> = {}
): Child {
  const raise = limits !== null && limits.soft < files && limits.hard >= files
  const how = { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] as ('ignore' | 'inherit' | 'ipc')[], env: { ...process.env, ...env } }
  const child = raise
    ? spawn('/bin/sh', ['-c', `ulimit -Sn ${files} && exec "$0" "$@"`, process.execPath, ...flags, file], how)
    : spawn(process.execPath, [...flags, file], how)
  return { process: child, call: requester(child, name) }
}

function ready(child: Child, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the server did not start in time')), timeoutMs)
    child.process.on('message', (msg: { ready?: boolean; port?: number }) => {
      if (msg.ready !== true) return
      clearTimeout(timer)
      resolve(msg.port as number)
    })
    child.process.once('exit', (code) => reject(new Error(`the server exited (${code}) before it listened`)))
  })
}

/** Asks the child to exit; kills it (our own child, by its handle) when it does not within 10 s. */
function stop(child: Child): Promise<void> {
  const p = child.process
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000)
    p.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    if (p.connected) p.send({ id: 0, cmd: 'exit' })
    else p.kill('SIGTERM')
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Mark {
  cpu: { user: number; system: number }
  at: number
}

interface Phase {
  complete: boolean
  delivered: number
  missing: number
  extra: number
  unexpected: number
  outOfOrder: number
  firstSentAt: number
  lastAt: number
  latencyUs: { p50: number; p99: number; max: number; count: number }
  loadCpuUs: number
}

interface Connected {
  connected: number
  failed: number
  errors: string[]
  startedAt: number
  endedAt: number
}

const cpuBetween = (a: Mark, b: Mark) => b.cpu.user - a.cpu.user + (b.cpu.system - a.cpu.system)

/** One contender in one scenario: fresh server and load processes, a warm-up, then the measured part. */
async function runOne(
  scenario: Scenario,
  contender: Contender,
  rep: number,
  o: Options,
  dir: string,
  limits: ReturnType<typeof fileLimits>
): Promise<Run> {
  const clients = scaled(scenario.clients, o.scale)
  const files = clients + 1024
  const flags = ['--expose-gc']
  if (o.cpuProf !== undefined && contender.id === 'realtime') {
    flags.push('--cpu-prof', '--cpu-prof-dir', o.cpuProf, '--cpu-prof-name', profileName(scenario, rep))
  }
  const env: Record<string, string> = contender.id === 'realtime' && !o.realtimeCoalesce ? { [COALESCE_ENV]: 'off' } : {}
  const server = start(
    join(dir, 'contenders', `${contender.server ?? contender.id}.js`),
    flags,
    files,
    limits,
    `${contender.id} server`,
    env
  )
  let load: Child | undefined
  try {
    const port = await ready(server, o.timeoutMs)
    load = start(join(dir, 'load.js'), [], files, limits, 'load')
    const { call } = load
    const t = o.timeoutMs
    const connect = (count: number, firstUser: number, join: boolean) =>
      call<Connected>('connect', { protocol: contender.protocol, port, count, concurrency: o.concurrency, firstUser, join }, t)
    const mustConnect = async (count: number, firstUser: number, join: boolean) => {
      const r = await connect(count, firstUser, join)
      if (r.failed > 0) throw new Error(`${r.failed} of ${count} connections failed: ${r.errors.join('; ')}`)
      return r
    }

    if (scenario.kind === 'idle') {
      const before = await server.call<Record<string, number>>('memory', {}, t)
      const r = await mustConnect(clients, 0, true)
      await sleep(500)
      const after = await server.call<Record<string, number>>('memory', {}, t)
      const subscribers = await server.call<number>('subscribers', {}, t)
      const per = (k: string) => ((after[k] as number) - (before[k] as number)) / r.connected
      return {
        ok: subscribers === clients,
        connections: r.connected,
        subscribers,
        rssPerConnection: per('rss'),
        heapPerConnection: per('heapUsed'),
        externalPerConnection: per('external'),
        rssBefore: before.rss,
        rssAfter: after.rss
      }
    }

    if (scenario.kind === 'connect') {
      await mustConnect(scaled(clients / 20, 1), 1_000_000, false)
      const m0 = await server.call<Mark>('mark', {}, t)
      const r = await connect(clients, 0, false)
      const m1 = await server.call<Mark>('mark', {}, t)
      return {
        ok: r.failed === 0,
        window: { from: m0.at, to: m1.at },
        connections: r.connected,
        failed: r.failed,
        errors: r.errors,
        connectsPerSecond: r.connected / ((r.endedAt - r.startedAt) / 1e6),
        serverCpuUsPerConnect: cpuBetween(m0, m1) / r.connected
      }
    }

    await mustConnect(clients, 0, true)
    const subscribers = await server.call<number>('subscribers', {}, t)
    if (subscribers !== clients) throw new Error(`the server holds ${subscribers} subscribers, not ${clients}`)
    const events = scaled(scenario.events as number, o.scale)
    const phase = async (count: number, cmd: 'burst' | 'paced') => {
      await load?.call('arm', { events: count }, t)
      const emitted = server.call(cmd, { events: count, batch: o.batch, perSecond: scenario.perSecond }, t)
      const result = await call<Phase>('wait', { timeoutMs: t }, t + 5000)
      await emitted
      return result
    }
    const warm = await phase(scaled(events / 10, 1), 'burst')
    const m0 = await server.call<Mark>('mark', {}, t)
    const r = await phase(events, scenario.kind === 'paced' ? 'paced' : 'burst')
    const m1 = await server.call<Mark>('mark', {}, t)
    const wall = m1.at - m0.at
    const cpu = cpuBetween(m0, m1)
    return {
      ok: warm.complete && r.complete && r.extra + r.unexpected + r.outOfOrder + warm.outOfOrder === 0,
      window: { from: m0.at, to: m1.at },
      clients,
      events,
      expected: clients * events,
      delivered: r.delivered,
      missing: r.missing,
      extra: r.extra,
      unexpected: r.unexpected,
      outOfOrder: r.outOfOrder + warm.outOfOrder,
      deliveriesPerSecond: r.delivered / ((r.lastAt - r.firstSentAt) / 1e6),
      serverCpuUsPerDelivery: cpu / r.delivered,
      serverBusy: cpu / wall,
      loadCpuUsPerDelivery: r.loadCpuUs / r.delivered,
      latencyUs: { p50: r.latencyUs.p50, p99: r.latencyUs.p99, max: r.latencyUs.max }
    }
  } catch (err) {
    return { ok: false, error: (err as Error).message }
  } finally {
    // The server goes first, so the connections close from its side and the load's ports are free at once.
    await stop(server)
    if (load !== undefined) await stop(load)
  }
}

function describe(run: Run): string {
  if (run.error !== undefined) return `FAILED: ${run.error}`
  const f = (n: number, d = 2) => n.toLocaleString('en-US', { maximumFractionDigits: d })
  const check = run.ok ? '' : '  CHECK FAILED'
  if (run.deliveriesPerSecond !== undefined) {
    return `${f(run.deliveriesPerSecond, 0)} deliveries/s, ${f(run.serverCpuUsPerDelivery as number)} µs CPU/delivery, p99 ${f((run.latencyUs?.p99 ?? 0) / 1000)} ms${check}`
  }
  if (run.rssPerConnection !== undefined) {
    return `${f((run.rssPerConnection as number) / 1024, 1)} KiB RSS, ${f((run.heapPerConnection as number) / 1024, 1)} KiB heap per connection${check}`
  }
  return `${f(run.connectsPerSecond as number, 0)} connects/s, ${f(run.serverCpuUsPerConnect as number, 0)} µs CPU/connect${check}`
}

function versionOf(pkg: string): string {
  try {
    return JSON.parse(
      execFileSync(process.execPath, ['-p', `JSON.stringify(require('${pkg}/package.json').version)`], { cwd: root, encoding: 'utf8' })
    )
  } catch {
    return 'unknown'
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2))
  if (o === undefined) {
    console.log(usage)
    return
  }
  if (o.render) {
    const report = JSON.parse(await readFile(join(o.out, 'server.json'), 'utf8'))
    await writeFile(join(o.out, 'server.md'), markdown(report))
    return
  }
  const dist = join(root, 'dist/index.js')
  try {
    await readFile(dist)
  } catch {
    throw new Error('dist/ is missing: run `npm run build` first (`npm run bench` does)')
  }
  const limits = fileLimits()
  const most = Math.max(...o.scenarios.map((s) => scaled(s.clients, o.scale))) + 1024
  if (limits !== null && limits.hard < most) {
    console.error(`warning: the hard limit on open files (${limits.hard}) is below ${most}; raise it (ulimit -Hn) or use --scale`)
  }
  const dir = join(root, 'bench/.build', String(process.pid))
  await compile(dir)
  if (o.cpuProf !== undefined) await mkdir(o.cpuProf, { recursive: true })

  const started = new Date()
  const loadBefore = loadavg()
  const runs: Record<string, Record<string, Run[]>> = Object.fromEntries(
    o.scenarios.map((s) => [s.id, Object.fromEntries(o.only.map((c) => [c.id, [] as Run[]]))])
  )
  const total = o.reps * o.scenarios.length * o.only.length
  let done = 0
  try {
    for (let rep = 1; rep <= o.reps; rep++) {
      for (const scenario of o.scenarios) {
        // A rotating order: no contender always runs first, or right after the same neighbour.
        const order = o.only.map((_, i) => o.only[(i + rep - 1) % o.only.length] as Contender)
        for (const contender of order) {
          const t0 = Date.now()
          const run = await runOne(scenario, contender, rep, o, dir, limits)
          run.seconds = (Date.now() - t0) / 1000
          runs[scenario.id]?.[contender.id]?.push(run)
          done++
          console.error(`[${done}/${total}] rep ${rep} ${scenario.id} ${contender.id} (${run.seconds.toFixed(1)} s): ${describe(run)}`)
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }

  const meta = {
    date: started.toISOString(),
    durationS: Math.round((Date.now() - started.getTime()) / 1000),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpu: `${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    loadAverage: { before: loadBefore.map((x) => Math.round(x * 100) / 100), after: loadavg().map((x) => Math.round(x * 100) / 100) },
    note: o.note,
    options: { reps: o.reps, scale: o.scale, batch: o.batch, concurrency: o.concurrency, realtimeCoalesce: o.realtimeCoalesce },
    versions: {
      'fastify-realtime': versionOf('fastify-realtime'),
      ws: versionOf('ws'),
      fastify: versionOf('fastify'),
      '@fastify/websocket': versionOf('@fastify/websocket'),
      'socket.io': versionOf('socket.io')
    }
  }
  const results = summarize(o.scenarios, o.only, runs, (s) => ({
    clients: scaled(s.clients, o.scale),
    events: s.events === undefined ? undefined : scaled(s.events, o.scale)
  }))
  // A run with coalescing off says so wherever fastify-realtime is named.
  const named = o.only.map((c) => (c.id === 'realtime' && !o.realtimeCoalesce ? { ...c, name: `${c.name} (coalesce off)` } : c))
  const report = { meta, contenders: named, results }
  await mkdir(o.out, { recursive: true })
  await writeFile(join(o.out, 'server.json'), `${JSON.stringify(report, null, 2)}\n`)
  await writeFile(join(o.out, 'server.md'), markdown(report))
  console.error(`wrote ${relative(process.cwd(), join(o.out, 'server.md'))} and server.json (${meta.durationS} s)`)

  if (o.cpuProf !== undefined) {
    // The measured part of each run only: connecting the clients is not what a delivery costs.
    for (const s of o.scenarios) {
      for (const [i, run] of (runs[s.id]?.realtime ?? []).entries()) {
        const file = join(o.cpuProf, profileName(s, i + 1))
        const profile = await readFile(file, 'utf8').catch(() => undefined)
        if (profile === undefined) continue
        const window = s.kind === 'idle' ? undefined : run.window
        console.error(`\n${relative(process.cwd(), file)}: top by self time${window === undefined ? '' : ', measured part'}`)
        console.error(topOfProfile(JSON.parse(profile), 15, window))
      }
    }
  }
  const failed = Object.values(runs)
    .flatMap((byContender) => Object.values(byContender).flat())
    .filter((r) => !r.ok).length
  if (failed > 0) {
    console.error(`${failed} run(s) failed their checks; see the "ok" fields in server.json`)
    process.exitCode = 1
  }
}

await main()
