// The top of a V8 CPU profile (`node --cpu-prof`): functions by self time, and the same time by package.
//
//   npx tsx bench/fanout/profile.ts <file.cpuprofile> [--top 25]
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]
  samples: number[]
  timeDeltas: number[]
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

/** A plain-text table of the `top` functions by self time, then self time by area; percentages of the busy time. */
export function topOfProfile(profile: CpuProfile, top = 20): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, { fn: string; at: string; area: string; us: number }>()
  const areas = new Map<string, number>()
  let busy = 0
  for (const [i, id] of profile.samples.entries()) {
    const node = byId.get(id)
    const us = profile.timeDeltas[i] ?? 0
    if (node === undefined) continue
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
  const lines = [`busy ${(busy / 1000).toFixed(0)} ms (idle left out)`, '']
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
  const at = process.argv.indexOf('--top')
  const top = at === -1 ? 25 : Number(process.argv[at + 1])
  console.log(topOfProfile(JSON.parse(await readFile(file, 'utf8')), top))
}
