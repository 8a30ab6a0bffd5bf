// Medians, ratios and the Markdown page of the server fan-out benchmark.
import type { Protocol } from './load.js'

export interface Contender {
  readonly id: string
  readonly name: string
  readonly protocol: Protocol
  /** The server under `contenders/` when another contender's serves it too (its clients then differ); else `id`. */
  readonly server?: string
}

export interface Scenario {
  readonly id: string
  readonly kind: 'burst' | 'paced' | 'idle' | 'connect'
  readonly title: string
  /** Clients (burst, paced) or connections (idle, connect). */
  readonly clients: number
  readonly events?: number
  /** Events a second, for `paced`. */
  readonly perSecond?: number
}

/** One contender in one scenario, one repetition. Which fields are set depends on the scenario's kind. */
export interface Run {
  ok: boolean
  error?: string
  /** Wall time of the whole run, processes included. */
  seconds?: number
  /** The measured part, in µs of the monotonic clock (the time base of a --cpu-prof profile too). */
  window?: { from: number; to: number }
  clients?: number
  events?: number
  expected?: number
  delivered?: number
  missing?: number
  extra?: number
  unexpected?: number
  outOfOrder?: number
  deliveriesPerSecond?: number
  serverCpuUsPerDelivery?: number
  serverBusy?: number
  loadCpuUsPerDelivery?: number
  latencyUs?: { p50: number; p99: number; max: number }
  connections?: number
  subscribers?: number
  rssPerConnection?: number
  heapPerConnection?: number
  externalPerConnection?: number
  rssBefore?: number
  rssAfter?: number
  failed?: number
  errors?: string[]
  connectsPerSecond?: number
  serverCpuUsPerConnect?: number
}

/** The metrics a scenario's kind is judged by, with the ratios to the limit and to Socket.IO. */
const headline: Record<Scenario['kind'], readonly string[]> = {
  burst: ['deliveriesPerSecond', 'serverCpuUsPerDelivery'],
  paced: ['latencyP50', 'latencyP99', 'serverCpuUsPerDelivery'],
  idle: ['rssPerConnection', 'heapPerConnection'],
  connect: ['connectsPerSecond', 'serverCpuUsPerConnect']
}

export const LIMIT = 'ws-frame'
export const SOCKET_IO = 'socketio'

export interface ContenderResult {
  contender: string
  ok: boolean
  median: Record<string, number>
  /** This contender's median divided by the limit's (contender 3) and by Socket.IO's, for the headline metrics. */
  ratio: { toLimit: Record<string, number>; toSocketIO: Record<string, number> }
  runs: Run[]
}

export interface ScenarioResult {
  id: string
  kind: Scenario['kind']
  title: string
  clients: number
  events: number | undefined
  contenders: ContenderResult[]
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}

/** The numbers of a run, flat: latency percentiles become latencyP50, latencyP99, latencyMax. */
function flat(run: Run): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [k, v] of Object.entries(run)) if (typeof v === 'number' && Number.isFinite(v)) out[k] = v
  if (run.latencyUs !== undefined) {
    out.latencyP50 = run.latencyUs.p50
    out.latencyP99 = run.latencyUs.p99
    out.latencyMax = run.latencyUs.max
  }
  return out
}

export function summarize(
  scenarios: readonly Scenario[],
  contenders: readonly Contender[],
  runs: Record<string, Record<string, Run[]>>,
  size: (s: Scenario) => { clients: number; events: number | undefined }
): ScenarioResult[] {
  return scenarios.map((s) => {
    const results = contenders.map((c): ContenderResult => {
      const mine = runs[s.id]?.[c.id] ?? []
      const measured = mine.filter((r) => r.error === undefined).map(flat)
      const keys = new Set(measured.flatMap((m) => Object.keys(m)))
      const med: Record<string, number> = {}
      for (const k of keys) med[k] = median(measured.map((m) => m[k]).filter((v): v is number => v !== undefined))
      return {
        contender: c.id,
        ok: mine.length > 0 && mine.every((r) => r.ok),
        median: med,
        ratio: { toLimit: {}, toSocketIO: {} },
        runs: mine
      }
    })
    const limit = results.find((r) => r.contender === LIMIT)
    const socketIO = results.find((r) => r.contender === SOCKET_IO)
    for (const r of results) {
      for (const k of headline[s.kind]) {
        const mine = r.median[k]
        if (mine === undefined) continue
        const l = limit?.median[k]
        const io = socketIO?.median[k]
        if (l !== undefined && l > 0) r.ratio.toLimit[k] = mine / l
        if (io !== undefined && io > 0) r.ratio.toSocketIO[k] = mine / io
      }
    }
    return { id: s.id, kind: s.kind, title: s.title, ...size(s), contenders: results }
  })
}

const n0 = (v: number | undefined) => (v === undefined ? '—' : Math.round(v).toLocaleString('en-US'))
const n2 = (v: number | undefined) =>
  v === undefined ? '—' : v.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })
const ms = (us: number | undefined) => (us === undefined ? '—' : (us / 1000).toLocaleString('en-US', { maximumFractionDigits: 2 }))
const kib = (b: number | undefined) => (b === undefined ? '—' : `${(b / 1024).toLocaleString('en-US', { maximumFractionDigits: 1 })} KiB`)
const pct = (v: number | undefined) => (v === undefined ? '—' : `${Math.round(v * 100)} %`)
const x = (v: number | undefined) => (v === undefined ? '—' : `${v.toFixed(2)}×`)

interface Report {
  meta: {
    date: string
    durationS: number
    node: string
    platform: string
    cpu: string
    memoryGiB: number
    loadAverage: { before: number[]; after: number[] }
    note: string | undefined
    options: { reps: number; scale: number; batch: number; concurrency: number; realtimeCoalesce?: boolean }
    versions: Record<string, string>
  }
  contenders: readonly Contender[]
  results: ScenarioResult[]
}

function table(head: string[], rows: string[][]): string {
  const align = head.map((_, i) => (i === 0 ? '---' : '---:'))
  return [head, align, ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n')
}

function section(s: ScenarioResult, names: Map<string, string>): string {
  const name = (r: ContenderResult) => `${names.get(r.contender) ?? r.contender}${r.ok ? '' : ' ⚠'}`
  const rows = s.contenders
  let body: string
  const latency = (r: ContenderResult) => `${ms(r.median.latencyP50)} / ${ms(r.median.latencyP99)} / ${ms(r.median.latencyMax)}`
  const delivered = (r: ContenderResult) => (r.runs.length > 0 && r.runs.every((run) => run.ok) ? 'all, in order' : 'NO')
  if (s.kind === 'burst') {
    body = table(
      [
        'Contender',
        'Deliveries/s',
        '× limit',
        'Server CPU µs/delivery',
        '× limit',
        '× Socket.IO',
        'Server busy',
        'Latency p50 / p99 / max (ms)',
        'Delivered'
      ],
      rows.map((r) => [
        name(r),
        n0(r.median.deliveriesPerSecond),
        x(r.ratio.toLimit.deliveriesPerSecond),
        n2(r.median.serverCpuUsPerDelivery),
        x(r.ratio.toLimit.serverCpuUsPerDelivery),
        x(r.ratio.toSocketIO.serverCpuUsPerDelivery),
        pct(r.median.serverBusy),
        latency(r),
        delivered(r)
      ])
    )
  } else if (s.kind === 'paced') {
    body = table(
      [
        'Contender',
        'Latency p50 / p99 / max (ms)',
        'p99 × limit',
        'p99 × Socket.IO',
        'Server CPU µs/delivery',
        '× limit',
        '× Socket.IO',
        'Server busy',
        'Deliveries/s reached',
        'Delivered'
      ],
      rows.map((r) => [
        name(r),
        latency(r),
        x(r.ratio.toLimit.latencyP99),
        x(r.ratio.toSocketIO.latencyP99),
        n2(r.median.serverCpuUsPerDelivery),
        x(r.ratio.toLimit.serverCpuUsPerDelivery),
        x(r.ratio.toSocketIO.serverCpuUsPerDelivery),
        pct(r.median.serverBusy),
        n0(r.median.deliveriesPerSecond),
        delivered(r)
      ])
    )
  } else if (s.kind === 'idle') {
    body = table(
      [
        'Contender',
        'RSS per connection',
        '× limit',
        '× Socket.IO',
        'Heap per connection',
        '× limit',
        '× Socket.IO',
        'External per connection'
      ],
      rows.map((r) => [
        name(r),
        kib(r.median.rssPerConnection),
        x(r.ratio.toLimit.rssPerConnection),
        x(r.ratio.toSocketIO.rssPerConnection),
        kib(r.median.heapPerConnection),
        x(r.ratio.toLimit.heapPerConnection),
        x(r.ratio.toSocketIO.heapPerConnection),
        kib(r.median.externalPerConnection)
      ])
    )
  } else {
    body = table(
      ['Contender', 'Connections/s', '× limit', '× Socket.IO', 'Server CPU µs/connect', '× limit', '× Socket.IO'],
      rows.map((r) => [
        name(r),
        n0(r.median.connectsPerSecond),
        x(r.ratio.toLimit.connectsPerSecond),
        x(r.ratio.toSocketIO.connectsPerSecond),
        n0(r.median.serverCpuUsPerConnect),
        x(r.ratio.toLimit.serverCpuUsPerConnect),
        x(r.ratio.toSocketIO.serverCpuUsPerConnect)
      ])
    )
  }
  const failures = rows.flatMap((r) =>
    r.runs.filter((run) => !run.ok).map((run) => `- ${names.get(r.contender)}: ${run.error ?? 'a check failed'}`)
  )
  return [`### ${s.title}`, '', body, ...(failures.length > 0 ? ['', 'Failed runs:', '', ...failures] : [])].join('\n')
}

export function markdown(report: Report): string {
  const { meta } = report
  const names = new Map(report.contenders.map((c, i) => [c.id, `${i + 1}. ${c.name}`]))
  const scale = meta.options.scale === 1 ? '' : `, scale ${meta.options.scale} (not the default sizes)`
  const lines = [
    '# Server fan-out benchmark',
    '',
    `Measured ${meta.date.slice(0, 10)} with \`npm run bench\`: Node ${meta.node}, ${meta.platform}, ${meta.cpu}, ${meta.memoryGiB} GiB.`,
    `Medians of ${meta.options.reps} interleaved repetitions${scale}; bursts emit ${meta.options.batch} events per event-loop turn; ` +
      `the load process opens ${meta.options.concurrency} connections at a time. Load average before / after: ` +
      `${meta.loadAverage.before.join(', ')} / ${meta.loadAverage.after.join(', ')}; the run took ${Math.round(meta.durationS / 60)} min.`,
    ...(meta.note === undefined ? [] : ['', `**${meta.note}**`]),
    ...(meta.options.realtimeCoalesce === false ? ['', 'fastify-realtime ran with `coalesce: false` (`--realtime-coalesce off`).'] : []),
    '',
    `Versions: ${Object.entries(meta.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    '',
    'Every contender is its own server process on 127.0.0.1, driven by a separate load process of raw `ws` clients.',
    '"Server CPU" is the server process\'s own `process.cpuUsage()` (user + system) around the measured part,',
    'divided by the deliveries (or connections); "× limit" divides by contender 3, "× Socket.IO" by contender 6',
    '(below 1 is better for CPU and memory, above 1 for rates). "Server busy" is that CPU time over the wall time:',
    'near 100 % the server was the bottleneck, well below it the load process was. ⚠ marks a contender with a failed run.',
    'How to read and rerun it: [bench/README.md](../README.md).',
    '',
    ...report.results.flatMap((s) => [section(s, names), ''])
  ]
  return `${lines.join('\n').trimEnd()}\n`
}
