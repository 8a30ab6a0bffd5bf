// Reliability 1: generated frame byte strings over raw TCP after a valid upgrade.
import fc from 'fast-check'
import t from 'tap'
import WebSocket from 'ws'
import { buildApp, catchUncaught, sign, wsUrl } from '../helpers/index.js'
import { closeCodeOf, rawUpgrade } from '../helpers/raw.js'

const FRAMES = 10_000
const PARALLEL = 50

// 22 s on a quiet 2-core machine; several times that under load, which is no failure.
t.setTimeout(600_000)

t.test(`${FRAMES} generated frames over raw TCP: every connection ends, the process and a bystander are unharmed`, async (t) => {
  const uncaught = catchUncaught(t)
  // Mostly noise, and frames that look almost right: a plausible first byte and length, masked or not.
  const frame = fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 64 }),
    fc
      .tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 200 }))
      .map(([b0, b1, rest]) => Uint8Array.from([b0, b1, ...rest])),
    fc
      .tuple(
        fc.constantFrom(0x81, 0x82, 0x88, 0x89, 0x8a, 0x01, 0x80, 0xc1),
        fc.integer({ min: 0, max: 125 }),
        fc.uint8Array({ minLength: 4, maxLength: 140 })
      )
      .map(([b0, len, rest]) => Uint8Array.from([b0, 0x80 | len, ...rest]))
  )
  const samples = fc.sample(frame, { numRuns: FRAMES, seed: 42 })
  // The frames are made before the bystander connects: generating them blocks the event loop, and a stall longer than
  // the heartbeat timeout right after a ping reaps a healthy connection whose pong is still unread. Pings every 100 ms
  // show the bystander is looked after; the timeout is generous so a loaded machine cannot fake a dead peer.
  const app = await buildApp(t, { heartbeat: { interval: 100, timeout: 10_000 }, limits: { connectionsPerUser: PARALLEL + 1 } })
  const { port } = app.server.address() as { port: number }

  const bystander = new WebSocket(wsUrl(app), { headers: { authorization: `Bearer ${sign('bystander')}` } })
  let pings = 0
  bystander.on('ping', () => pings++)
  await new Promise((resolve) => bystander.once('open', resolve))

  const token = sign('fuzzer')
  const outcomes = new Map<string, number>()
  const echoed = new Map<string, number>()
  const started = Date.now()
  for (let i = 0; i < samples.length; i += PARALLEL) {
    await Promise.all(
      samples.slice(i, i + PARALLEL).map(async (bytes) => {
        const { socket, status, rest } = await rawUpgrade(port, { Authorization: `Bearer ${token}` })
        if (status !== 101) throw new Error(`upgrade answered ${status}`)
        socket.write(bytes)
        // A frame still incomplete waits for more bytes; the end of our stream then closes it.
        setTimeout(() => socket.end(), 20)
        const outcome = String(await closeCodeOf(socket, rest, 30_000))
        // A well-formed close frame from the client is answered with its own code, as RFC 6455 says.
        const tally = bytes[0] === 0x88 && outcome !== 'eof' ? echoed : outcomes
        tally.set(outcome, (tally.get(outcome) ?? 0) + 1)
      })
    )
  }
  const seconds = (Date.now() - started) / 1000
  t.equal((outcomes.get('timeout') ?? 0) + (echoed.get('timeout') ?? 0), 0, 'every connection was closed by the server')
  const codes = [...outcomes.keys()].filter((k) => k !== 'eof')
  t.ok(
    codes.every((c) => ['1002', '1007', '1008', '1009'].includes(c)),
    `close frames carry protocol codes only: ${JSON.stringify(Object.fromEntries(outcomes))}`
  )
  t.same(uncaught, [], '0 uncaught exceptions, 0 unhandled rejections')
  t.equal(bystander.readyState, WebSocket.OPEN, 'the bystander is still connected')
  t.ok(pings >= 2, `the bystander kept its heartbeats (${pings} pings)`)
  t.equal(app.realtime.stats().connections, 1, 'only the bystander remains')
  t.comment(
    `reliability/malformed-frames: ${FRAMES} frames in ${seconds.toFixed(1)} s; close codes ${JSON.stringify(Object.fromEntries(outcomes))}; ` +
      `client close frames echoed ${JSON.stringify(Object.fromEntries(echoed))}`
  )
  bystander.close()
})
