// The top of a V8 CPU profile (`node --cpu-prof`): functions by self time, and the same time by package, over the
// whole profile or a window of it. A profile's timestamps are microseconds of the monotonic clock, the clock the
// benchmark's `nowUs()` reads, so the window of a measured part (`window` in server.json) can be cut out.
//
//   npx tsx bench/fanout/profile.ts <file.cpuprofile> [--top 25] [--from <µs> --to <µs>]
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  startTime: number
  samples: number[]
  timeDeltas: number[]
}

export interface Window {
  from: number
  to: number
}

/** Where a function lives: the package under node_modules, Node's internals, the built package, or V8's own entries. */
function areaOf(url: string, fn: string): string {
  if (url === '') return fn.startsWith('(') ? fn : 'native'
  if (url.startsWith('node:')) return 'node internals'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (pkg !== null) return pkg[1] as string
  if (/\/dist\/[^/]+\.(c?js)$/.test(url)) return 'fastify-realtime (dist)'
  return 'benchmark harness'
}

function where(url: string, line: number): string {
  if (url === '') return ''
  const short = url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/(dist|bench)\//, '$1/')
  return `${short}:${line + 1}`
}

/**
 * A plain-text table of the `top` functions by self time, then self time by area, as percentages of the busy time;
 * only the samples taken within `window` when one is given.
 */
export function topOfProfile(profile: CpuProfile, top = 20, window?: Window): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, { fn: string; at: string; area: string; us: number }>()
  const areas = new Map<string, number>()
  let busy = 0
  let at = profile.startTime
  for (const [i, id] of profile.samples.entries()) {
    const node = byId.get(id)
    const us = profile.timeDeltas[i] ?? 0
    at += us
    if (node === undefined || (window !== undefined && (at < window.from || at > window.to))) continue
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)') continue
    busy += us
    const fn = functionName === '' ? '(anonymous)' : functionName
    const key = `${fn} ${url}:${lineNumber}`
    const entry = self.get(key) ?? { fn, at: where(url, lineNumber), area: areaOf(url, fn), us: 0 }
    entry.us += us
    self.set(key, entry)
    areas.set(entry.area, (areas.get(entry.area) ?? 0) + us)
  }
  const p = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`
  const span = window === undefined ? 'the whole process' : `${((window.to - window.from) / 1000).toFixed(0)} ms measured`
  const lines = [`${span}: busy ${(busy / 1000).toFixed(0)} ms (idle left out)`, '']
  for (const e of [...self.values()].sort((a, b) => b.us - a.us).slice(0, top)) {
    lines.push(`${p(e.us)}  ${e.fn.padEnd(32)} ${e.at}`)
  }
  lines.push('', 'by area:')
  for (const [area, us] of [...areas].sort((a, b) => b[1] - a[1]).slice(0, 10)) lines.push(`${p(us)}  ${area}`)
  return lines.join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2]
  if (file === undefined) {
    console.error('usage: npx tsx bench/fanout/profile.ts <file.cpuprofile> [--top 25]')
    process.exit(2)
  }
  const arg = (name: string) => {
    const i = process.argv.indexOf(name)
    return i === -1 ? undefined : Number(process.argv[i + 1])
  }
  const from = arg('--from')
  const to = arg('--to')
  const window = from !== undefined && to !== undefined ? { from, to } : undefined
  console.log(topOfProfile(JSON.parse(await readFile(file, 'utf8')), arg('--top') ?? 25, window))
}
