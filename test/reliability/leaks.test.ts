// Reliability 13: many connection life cycles leave nothing behind.
import v8 from 'node:v8'
import vm from 'node:vm'
import t from 'tap'
import { until } from '../helpers/client.js'
import { buildApp, connect, delay } from '../helpers/index.js'

const CYCLES = 10_000
const PARALLEL = 25

// 16 s on a quiet 2-core machine, and more than the suite's 120 s when it is loaded: the figure is reported, not timed.
t.setTimeout(900_000)

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc()
    await delay(20)
  }
  return process.memoryUsage().heapUsed
}

t.test(`${CYCLES} cycles of connect, subscribe, emit, request, disconnect: heap, handles and maps back to baseline`, async (t) => {
  const app = await buildApp(t, { authorize: () => true, limits: { connectionsPerUser: PARALLEL } })
  async function cycle(i: number): Promise<void> {
    const client = await connect(app, `user${i % 100}`)
    await client.subscribe('workflow:leak')
    await app.realtime.emit('workflow:leak', { type: 'agent:thought', data: { runId: 'leak', content: `cycle ${i}` } })
    await client.next('agent:thought')
    const answer = app.realtime.request(client.ready.data.connectionId, {
      type: 'hitl_request',
      data: { requestId: `q${i}`, question: '?' }
    })
    const asked = await client.next('hitl_request')
    client.send({ type: 'reply', id: asked.id, data: i })
    await answer
    await client.close()
  }
  async function run(from: number, to: number): Promise<void> {
    for (let i = from; i < to; i += PARALLEL) await Promise.all(Array.from({ length: Math.min(PARALLEL, to - i) }, (_, k) => cycle(i + k)))
  }
  await run(0, 500) // warm-up: code paths compiled, pools filled
  await delay(100)
  const baseHeap = await settledHeap()
  const baseHandles = process.getActiveResourcesInfo().length
  const started = Date.now()
  await run(500, CYCLES)
  const seconds = (Date.now() - started) / 1000
  // The last sockets finish closing in their own time on a loaded machine: wait for that, not for a fixed delay. A leak
  // never gets there, and the checks below then report it.
  await until(
    () => app.websocketServer.clients.size === 0 && process.getActiveResourcesInfo().length <= baseHandles,
    30_000,
    'the last sockets to close'
  ).catch(() => {})
  const heap = await settledHeap()
  const handles = process.getActiveResourcesInfo().length
  const stats = app.realtime.stats()
  t.same(
    { connections: stats.connections, subscriptions: stats.subscriptions, pendingRequests: stats.pendingRequests },
    { connections: 0, subscriptions: 0, pendingRequests: 0 }
  )
  t.ok(heap <= baseHeap * 1.1, `heap after GC ${(heap / 1e6).toFixed(1)} MB vs baseline ${(baseHeap / 1e6).toFixed(1)} MB (limit +10 %)`)
  t.ok(handles <= baseHandles, `active handles ${handles} vs baseline ${baseHandles}`)
  t.equal(app.websocketServer.clients.size, 0, 'no socket left in the WebSocket server')
  t.comment(
    `reliability/leaks: ${CYCLES - 500} cycles in ${seconds.toFixed(1)} s; heap ${(baseHeap / 1e6).toFixed(1)} → ${(heap / 1e6).toFixed(1)} MB (${(((heap - baseHeap) / baseHeap) * 100).toFixed(1)} %); handles ${baseHandles} → ${handles}`
  )
})
