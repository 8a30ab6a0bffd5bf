// Reliability 19: the path to Redis goes silent for 20 s: packets dropped, nothing closed, no error. Two instances
// reach Redis through a TCP proxy the test controls; a third, on a path that stays up, publishes all along. When the
// hole opens, the proxy drops every byte of every connection through it, for good, as a NAT or load balancer that
// forgot them would: only connections opened after the hole closes work again.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { redisAdapter } from '../../src/adapters/redis.js'
import { sdk, until, watchRoom } from '../helpers/client.js'
import { buildApp, catchUncaught, logCapture, sign } from '../helpers/index.js'
import { tcpProxy } from '../helpers/proxy.js'
import { requireRedis, startRedis } from '../helpers/redis.js'

const skip = requireRedis(t)
const ROOM = 'workflow:blackhole'
const CLIENTS = 6
const HOLE_MS = 20_000
const COMMAND_TIMEOUT = 500
const PING_INTERVAL = 250

t.test(
  'Redis silent for 20 s: emits fail within commandTimeout, nothing crashes, every client ends with every event',
  { skip },
  async (t) => {
    const redis = await startRedis(t)
    const proxy = await tcpProxy(t, Number(new URL(redis.url).port))
    const proxied = `redis://127.0.0.1:${proxy.port}`
    const uncaught = catchUncaught(t)
    const history = { size: 1000, ttl: 120_000 }
    const behind: FastifyInstance[] = []
    const logs: Array<ReturnType<typeof logCapture>> = []
    for (let i = 0; i < 2; i++) {
      const log = logCapture('warn')
      logs.push(log)
      const adapter = redisAdapter({
        url: proxied,
        keyPrefix: redis.prefix,
        commandTimeout: COMMAND_TIMEOUT,
        pingInterval: PING_INTERVAL
      })
      behind.push(await buildApp(t, { authorize: () => true, history, adapter }, { fastify: log.fastify }))
    }
    // The publisher's path to Redis stays up.
    const publisher = await buildApp(t, {
      authorize: () => true,
      history,
      adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix })
    })

    const watches = Array.from({ length: CLIENTS }, (_, i) =>
      watchRoom(sdk(t, behind[i % 2] as FastifyInstance, { token: sign(`u${i}`) }), ROOM)
    )
    await until(() => watches.every((w) => w.subscribed === 1), 5000, 'every client subscribed')
    let published = 0
    const publish = async () => {
      published = (await publisher.realtime.emit(ROOM, { type: 'agent:thought', data: { runId: 'r', content: `e${published}` } })).seq
    }
    for (let i = 0; i < 10; i++) await publish()
    await until(() => watches.every((w) => w.seqs.length === 10), 5000, 'the first events everywhere')

    // The hole: the publisher goes on, and the instances behind the proxy try to emit every 500 ms.
    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()
    proxy.hole()
    const holedAt = Date.now()
    const failures = new Map<string, number>()
    let slowest = 0
    let emitted = 0
    let duringHole = 0
    while (Date.now() - holedAt < HOLE_MS) {
      await publish()
      duringHole++
      const started = Date.now()
      try {
        await (behind[emitted++ % 2] as FastifyInstance).realtime.emit(ROOM, {
          type: 'agent:thought',
          data: { runId: 'r', content: 'in the hole' }
        })
      } catch (err) {
        const code = (err as { code?: string }).code ?? String(err)
        failures.set(code, (failures.get(code) ?? 0) + 1)
      }
      slowest = Math.max(slowest, Date.now() - started)
      await delay(500)
    }
    lag.disable()
    proxy.mend()
    const mendedAt = Date.now()

    // Back: each instance emits again once its adapter reconnected.
    for (const [i, app] of behind.entries()) {
      for (;;) {
        try {
          published = (await app.realtime.emit(ROOM, { type: 'agent:thought', data: { runId: 'r', content: 'back' } })).seq
          break
        } catch (err) {
          if (Date.now() - mendedAt > 15_000) throw new Error(`instance ${i} still cannot emit 15 s after the path came back: ${err}`)
          await delay(50)
        }
      }
    }
    const backAfter = Date.now() - mendedAt
    for (let i = 0; i < 10; i++) await publish()
    await until(() => watches.every((w) => w.seqs.at(-1) === published), 20_000, `every client at seq ${published}`)

    t.same(uncaught, [], '0 uncaught exceptions, 0 unhandled rejections')
    t.same(
      [...failures.keys()],
      ['FST_REALTIME_ADAPTER_FAILED'],
      `every emit in the hole failed with a clear code (${failures.get('FST_REALTIME_ADAPTER_FAILED')})`
    )
    t.equal(
      [...failures.values()].reduce((a, b) => a + b, 0),
      emitted,
      'none of them got through'
    )
    const bound = COMMAND_TIMEOUT + 200 + Math.round(lag.max / 1e6)
    t.ok(
      slowest <= bound,
      `the slowest failed in ${slowest} ms (commandTimeout ${COMMAND_TIMEOUT} ms; bound ${bound} ms with the event-loop lag)`
    )
    t.ok(backAfter < 5000, `both instances emitted again ${backAfter} ms after the path came back`)
    for (const [i, w] of watches.entries()) {
      t.same(
        w.seqs,
        Array.from({ length: published }, (_, n) => n + 1),
        `client ${i}: every event, in order, the ${duringHole} published during the hole filled from the history`
      )
    }
    t.equal(
      watches.reduce((n, w) => n + w.gaps + w.notRecovered, 0),
      0,
      'no gap and no recovered: false'
    )
    for (const log of logs) {
      t.ok(
        log.records().some((r) => r.msg === 'realtime redis connection silent; reconnecting'),
        'each instance logged that its connection went silent'
      )
    }
    t.comment(
      `reliability/redis-blackhole: ${HOLE_MS / 1000} s of silence; ${emitted} emits failed, the slowest in ${slowest} ms; ` +
        `adapters back ${backAfter} ms after the path; ${CLIENTS} clients got all ${published} events, 0 gaps`
    )
  }
)
