// Reliability 8: a client flooding at 1,000 msg/s gets no more than the token bucket allows.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import t from 'tap'
import { Type } from '../../src/index.js'
import { buildApp, connect, delay } from '../helpers/index.js'

const RATE = 20
const BURST = 40
const SECONDS = 2

t.test('one client sending 1,000 msg/s: handler calls ≤ burst + rate × t; another client keeps being answered', async (t) => {
  const app = await buildApp(t, { limits: { messagesPerSecond: RATE, burst: BURST } })
  const calls: number[] = []
  app.realtime.handle('work', Type.Object({}), () => {
    calls.push(performance.now())
  })
  const flooder = await connect(app, 'flooder')
  const neighbour = await connect(app, 'neighbour')
  const loop = monitorEventLoopDelay({ resolution: 5 })
  loop.enable()

  const rtts: number[] = []
  let measuring = true
  const probe = (async () => {
    for (let i = 0; measuring; i++) {
      const started = performance.now()
      await neighbour.call({ type: 'ping', id: `p${i}` })
      rtts.push(performance.now() - started)
      await delay(20)
    }
  })()

  const started = performance.now()
  let sent = 0
  while (performance.now() - started < SECONDS * 1000) {
    for (let i = 0; i < 10; i++) flooder.send({ type: 'work', data: {} })
    sent += 10
    await delay(10)
  }
  const elapsed = (performance.now() - started) / 1000
  measuring = false
  await probe
  await delay(50)
  loop.disable()

  const bound = BURST + RATE * elapsed
  t.ok(
    calls.length <= Math.floor(bound) + 1,
    `${calls.length} handler calls for ${sent} messages in ${elapsed.toFixed(2)} s (bound ${bound.toFixed(1)})`
  )
  t.ok(calls.length >= BURST, 'the burst itself passed')
  const limited = flooder.frames.filter((f) => f.type === 'error' && f.data.code === 'rate_limited').length
  t.equal(limited + calls.length, sent, 'every message was either handled or answered rate_limited')
  t.equal(flooder.closeCode, undefined, 'a flood that keeps earning tokens is throttled, not closed')
  t.equal(neighbour.closeCode, undefined)
  rtts.sort((a, b) => a - b)
  const p99 = rtts[Math.floor(rtts.length * 0.99)] ?? 0
  t.comment(
    `reliability/flood: ${sent} messages in ${elapsed.toFixed(2)} s → ${calls.length} handler calls (bound ${bound.toFixed(1)}); ` +
      `neighbour ping p99 ${p99.toFixed(2)} ms over ${rtts.length} pings; event-loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(2)} ms`
  )
})
