// Reliability 7: a subscriber that never reads, while its room streams several MB per second.
import t from 'tap'
import WebSocket from 'ws'
import { buildApp, connect, delay, sign, wsUrl } from '../helpers/index.js'

const EVENT_BYTES = 40 * 1024
const EVERY_MS = 10
const SECONDS = 4

t.test('a subscriber that never reads is closed past the limit; memory stays bounded; 50 healthy subscribers keep up', async (t) => {
  const app = await buildApp(t, { authorize: () => true, history: { size: 100 } })
  const slow = await connect(app, 'slow')
  await slow.subscribe('workflow:stream')
  // The loopback's socket buffers hold several MB of what the slow client never reads; the stream must outrun them.
  ;(slow.ws as unknown as { _socket: import('node:net').Socket })._socket.pause()

  // Healthy readers read only the `ts` at the end of each frame, so the measuring costs little.
  const latencies: number[] = []
  const readers = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const ws = new WebSocket(wsUrl(app), { headers: { authorization: `Bearer ${sign(`reader${i}`)}` } })
      await new Promise((resolve) => ws.once('message', resolve))
      ws.send(JSON.stringify({ type: 'subscribe', id: 's', room: 'workflow:stream' }))
      await new Promise((resolve) => ws.once('message', resolve))
      ws.on('message', (data: Buffer) => {
        const ts = /"ts":"([^"]+)"/.exec(data.toString('latin1', data.length - 40))?.[1]
        if (ts !== undefined) latencies.push(Date.now() - Date.parse(ts))
      })
      return ws
    })
  )
  t.teardown(() => {
    for (const ws of readers) ws.terminate()
  })
  const rssBefore = process.memoryUsage().rss
  const chunk = 'x'.repeat(EVENT_BYTES)
  let sent = 0
  let peakRss = rssBefore
  const started = Date.now()
  while (Date.now() - started < SECONDS * 1000) {
    await app.realtime.emit('workflow:stream', { type: 'agent:thought', data: { runId: 'stream', content: chunk } })
    sent += EVENT_BYTES
    peakRss = Math.max(peakRss, process.memoryUsage().rss)
    await delay(EVERY_MS)
  }
  await delay(1200)
  const growth = (peakRss - rssBefore) / 1e6
  t.equal(app.realtime.stats().connections, 50, 'the slow subscriber was closed, the 50 others were not')
  t.ok(readers.every((ws) => ws.readyState === WebSocket.OPEN))
  t.ok(growth < 300, `peak RSS growth ${growth.toFixed(1)} MB`)
  latencies.sort((a, b) => a - b)
  const p50 = latencies[Math.floor(latencies.length * 0.5)] ?? 0
  const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? 0
  t.comment(
    `reliability/slow-consumer: ${(sent / 1e6).toFixed(1)} MB streamed in ${SECONDS} s (${(sent / 1e6 / SECONDS).toFixed(1)} MB/s); slow subscriber closed; ` +
      `peak RSS +${growth.toFixed(1)} MB; 50 healthy subscribers: ${latencies.length} deliveries, latency p50 ${p50} ms, p99 ${p99} ms (ms resolution; readers share the process)`
  )
})
