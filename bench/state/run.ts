// State rooms: what one change of a large value costs on the wire. A 200-node task graph (an agent's plan) lives in a
// state room; each update changes one node. Measured: the bytes of each `state_patch` frame a subscriber receives,
// beside the bytes of the same update sent whole (an ordinary event carrying the graph). Then a late joiner
// subscribes, and its value, and the value the first subscriber built from the patches, must equal the server's.
//
//   npx tsx bench/state/run.ts            prints a Markdown table and writes bench/results/state.md
//   npx tsx bench/state/run.ts --json     prints only the figures, as JSON
//   npx tsx bench/state/run.ts --updates 500 --nodes 200
//
// Everything runs in this process, on 127.0.0.1, with real sockets; nothing is timed, only bytes are counted.
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual, parseArgs } from 'node:util'
import jsonpatch from 'fast-json-patch'
import Fastify from 'fastify'
import WebSocket from 'ws'
import realtime from '../../src/index.js'

export interface StateBenchResult {
  readonly nodes: number
  readonly updates: number
  /** Bytes of the whole update: an event with the graph in its data. */
  readonly fullBytes: number
  readonly patchBytes: { readonly min: number; readonly median: number; readonly max: number }
  /** The largest patch frame as a share of the whole update. */
  readonly maxShare: number
  /** The late joiner's value, and the value built from the patches, equal the server's. */
  readonly lateJoinerEqual: boolean
  readonly patchedEqual: boolean
}

interface Node {
  id: string
  title: string
  status: 'pending' | 'running' | 'done' | 'failed'
  parent: string | null
  deps: string[]
  agent: string
  attempts: number
  result: string | null
}

const STATUSES: Node['status'][] = ['pending', 'running', 'done', 'failed']

/** A task graph as an agent planner makes one: a tree of tasks, each depending on up to two earlier ones. */
function taskGraph(n: number): { runId: string; nodes: Node[] } {
  const nodes = Array.from(
    { length: n },
    (_, i): Node => ({
      id: `task-${i}`,
      title: `Step ${i}: look up, compare and summarise source ${i}`,
      status: 'pending',
      parent: i === 0 ? null : `task-${Math.floor((i - 1) / 4)}`,
      deps: i < 2 ? [] : [`task-${i - 1}`, `task-${i - 2}`],
      agent: ['planner', 'researcher', 'writer'][i % 3] as string,
      attempts: 0,
      result: null
    })
  )
  return { runId: 'run-1', nodes }
}

/** A subscriber that keeps every frame and counts the bytes of each. */
async function subscriber(url: string, room: string) {
  const ws = new WebSocket(url, ['realtime.v1'], { headers: { authorization: `Bearer ${TOKEN}` } })
  const frames: Array<{ bytes: number; frame: any }> = []
  const waiters: Array<() => void> = []
  ws.on('message', (data: Buffer) => {
    frames.push({ bytes: data.byteLength, frame: JSON.parse(String(data)) })
    for (const w of waiters.splice(0)) w()
  })
  const next = async (type: string) => {
    for (;;) {
      const i = frames.findIndex((f) => f.frame.type === type)
      if (i >= 0) return frames.splice(i, 1)[0] as { bytes: number; frame: any }
      await new Promise<void>((resolve) => waiters.push(resolve))
    }
  }
  await next('ready')
  ws.send(JSON.stringify({ type: 'subscribe', id: 's', room }))
  const subscribed = (await next('subscribed')).frame
  return { ws, next, subscribed }
}

let TOKEN = ''

export async function measure(options: { nodes?: number; updates?: number } = {}): Promise<StateBenchResult> {
  const nodes = options.nodes ?? 200
  const updates = options.updates ?? 200
  const secret = 'bench-secret-that-is-long-enough-for-hs256'
  const app = Fastify()
  await app.register(realtime, { jwt: { secret }, authorize: () => true, history: { size: 0 } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  TOKEN = app.jwt.sign({ sub: 'bench' })
  const { port } = app.server.address() as { port: number }
  const url = `ws://127.0.0.1:${port}/ws`
  try {
    const room = 'plan:bench'
    const state = app.realtime.state(room)
    const graph = taskGraph(nodes)
    await state.set(graph)
    const first = await subscriber(url, room)
    let built = first.subscribed.data.state.value
    // The same update sent whole, as an app without state rooms would: one event with the graph in its data.
    const whole = JSON.stringify({ type: 'plan:update', room, seq: 1, data: graph, ts: new Date().toISOString() })
    const fullBytes = Buffer.byteLength(whole)
    const sizes: number[] = []
    for (let u = 0; u < updates; u++) {
      const node = graph.nodes[(u * 7) % nodes] as Node
      node.status = STATUSES[(STATUSES.indexOf(node.status) + 1) % STATUSES.length] as Node['status']
      node.attempts++
      await state.set(graph)
      const { bytes, frame } = await first.next('state_patch')
      sizes.push(bytes)
      built = jsonpatch.applyPatch(built, frame.data.ops, true, false).newDocument
    }
    const server = await state.get()
    const late = await subscriber(url, room)
    const sorted = [...sizes].sort((a, b) => a - b)
    const result: StateBenchResult = {
      nodes,
      updates,
      fullBytes,
      patchBytes: { min: sorted[0] as number, median: sorted[Math.floor(sorted.length / 2)] as number, max: sorted.at(-1) as number },
      maxShare: (sorted.at(-1) as number) / fullBytes,
      lateJoinerEqual: isDeepStrictEqual(late.subscribed.data.state.value, server),
      patchedEqual: isDeepStrictEqual(built, server)
    }
    first.ws.close()
    late.ws.close()
    return result
  } finally {
    await app.close()
  }
}

export function markdown(r: StateBenchResult): string {
  const pct = (x: number) => `${(x * 100).toFixed(2)} %`
  return [
    `| Task graph | Whole update | Patch per update (min / median / max) | Largest patch ÷ whole | Late joiner = server | Patched = server |`,
    '| --- | ---: | ---: | ---: | :---: | :---: |',
    `| ${r.nodes} nodes, ${r.updates} updates of one node | ${r.fullBytes.toLocaleString('en')} B | ${r.patchBytes.min} / ${r.patchBytes.median} / ${r.patchBytes.max} B | ${pct(r.maxShare)} | ${r.lateJoinerEqual ? 'yes' : 'NO'} | ${r.patchedEqual ? 'yes' : 'NO'} |`
  ].join('\n')
}

// Run as a script (a test imports `measure` instead).
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { values } = parseArgs({ options: { json: { type: 'boolean' }, updates: { type: 'string' }, nodes: { type: 'string' } } })
  const result = await measure({ nodes: Number(values.nodes ?? 200), updates: Number(values.updates ?? 200) })
  if (values.json === true) {
    console.log(JSON.stringify(result))
  } else {
    const table = markdown(result)
    console.log(table)
    await writeFile(new URL('../results/state.md', import.meta.url), `${table}\n`)
  }
  if (result.maxShare > 0.05 || !result.lateJoinerEqual || !result.patchedEqual) process.exitCode = 1
}
