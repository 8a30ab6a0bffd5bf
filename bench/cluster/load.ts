// The clients of the cluster benchmark, in a process of their own: plain `ws` sockets speaking each contender's
// protocol (realtime.v1, or Engine.IO 4 / Socket.IO 5 over WebSocket), so the receiving side costs the same for
// both. Driven by the benchmark over IPC; it reports how far a phase got delivered and the receive latencies.
import { createSigner } from 'fast-jwt'
import WebSocket from 'ws'
import { type Contender, micros, notifyParent, type Phase, ROOM, serve } from './common.js'

const sign = createSigner({ key: process.env.BENCH_JWT_SECRET as string, algorithm: 'HS256', expiresIn: 3_600_000 })

interface Event {
  readonly runId: string
  readonly step: number
  readonly sentAt: number
}

let sockets: WebSocket[] = []

/** What a phase collects: deliveries per event, and the latency of each delivery when asked to. */
interface Expectation {
  readonly phase: Phase
  readonly counts: Uint32Array
  readonly latencies: Float64Array | undefined
  samples: number
  deliveries: number
  /** Events delivered to every client, counting from the first. */
  done: number
  firstSentAt: number
  lastAt: number
  cpu: NodeJS.CpuUsage
  started: number
  finished: () => void
  reported: boolean
}

let expecting: Expectation | undefined
/** Settles when the expected phase is complete. */
let waiting: Promise<void> = Promise.resolve()

function receive(event: Event, at: number): void {
  const e = expecting
  if (e === undefined || event.runId !== e.phase.tag) return
  const n = ++e.counts[event.step]!
  e.deliveries++
  e.lastAt = at
  if (event.step === 0) e.firstSentAt = event.sentAt
  if (e.latencies !== undefined && e.samples < e.latencies.length) e.latencies[e.samples++] = (at - event.sentAt) / 1000
  if (n !== sockets.length || event.step !== e.done) return
  while (e.done < e.phase.count && e.counts[e.done] === sockets.length) e.done++
  if (e.done === e.phase.count) e.finished()
  // One progress report per turn of the event loop, however many events completed in it.
  else if (e.phase.window !== undefined && !e.reported) {
    e.reported = true
    setImmediate(() => {
      e.reported = false
      if (expecting === e) notifyParent('delivered', e.done)
    })
  }
}

function onRealtime(text: string, at: number): void {
  const parsed = JSON.parse(text)
  for (const frame of Array.isArray(parsed) ? parsed : [parsed]) {
    if (frame.type === 'agent:thought') receive(frame.data, at)
  }
}

/** Engine.IO packet `2` is a ping (answered `3`); Socket.IO packet `42` is an event, `["name", data]`. */
function onSocketIo(ws: WebSocket, text: string, at: number): void {
  if (text === '2') ws.send('3')
  else if (text.startsWith('42')) receive(JSON.parse(text.slice(2))[1], at)
}

/** Opens one client and resolves once it is in the room. */
function open(contender: Contender, base: string, user: string): Promise<WebSocket> {
  const token = sign({ sub: user })
  const ws =
    contender === 'socket.io'
      ? new WebSocket(`${base}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false })
      : new WebSocket(`${base}/ws`, ['realtime.v1', `bearer.${token}`], { perMessageDeflate: false })
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      ws.terminate()
      reject(new Error(`${contender} client ${user}: ${why}`))
    }
    ws.once('error', (err) => fail(err.message))
    ws.once('close', (code) => fail(`closed ${code} before joining the room`))
    // Until the client is in the room, frames are read here; afterwards, by the listener below.
    const setup = (raw: WebSocket.RawData): void => {
      const text = String(raw)
      let joined = false
      if (contender === 'socket.io') {
        if (text.startsWith('0{')) ws.send(`40${JSON.stringify({ token })}`)
        else if (text.startsWith('40')) ws.send(`420${JSON.stringify(['subscribe', ROOM])}`)
        else if (text.startsWith('44')) fail(`refused: ${text}`)
        else if (text.startsWith('430')) joined = JSON.parse(text.slice(3))[0] === true
        if (text.startsWith('430') && !joined) fail('subscribe refused')
      } else {
        const frame = JSON.parse(text)
        if (frame.type === 'ready') ws.send(JSON.stringify({ type: 'subscribe', id: '1', room: ROOM }))
        else if (frame.type === 'error') fail(`error ${frame.data.code}`)
        joined = frame.type === 'subscribed'
      }
      if (!joined) return
      ws.off('message', setup)
      ws.removeAllListeners('close')
      ws.removeAllListeners('error')
      ws.on('error', () => {})
      ws.on('message', (data) => {
        const at = micros()
        if (contender === 'socket.io') onSocketIo(ws, String(data), at)
        else onRealtime(String(data), at)
      })
      resolve(ws)
    }
    ws.on('message', setup)
  })
}

const CONNECT_CONCURRENCY = 50

serve({
  /** Opens `clients` clients, spread evenly over `urls` (client i to urls[i % n]), all in the room. */
  connect: async ({ contender, urls, clients }: { contender: Contender; urls: string[]; clients: number }) => {
    const opened: WebSocket[] = []
    for (let i = 0; i < clients; i += CONNECT_CONCURRENCY) {
      const batch = Array.from({ length: Math.min(CONNECT_CONCURRENCY, clients - i) }, (_, j) => i + j)
      opened.push(...(await Promise.all(batch.map((k) => open(contender, urls[k % urls.length] as string, `user-${k}`)))))
    }
    sockets = opened
    return sockets.length
  },
  /** Starts counting a phase's events; the result comes from `wait`. */
  expect: ({ phase, latency }: { phase: Phase; latency: boolean }) => {
    let finished = (): void => {}
    const done = new Promise<void>((resolve) => {
      finished = resolve
    })
    expecting = {
      phase,
      counts: new Uint32Array(phase.count),
      latencies: latency ? new Float64Array(phase.count * sockets.length) : undefined,
      samples: 0,
      deliveries: 0,
      done: 0,
      firstSentAt: Number.NaN,
      lastAt: Number.NaN,
      cpu: process.cpuUsage(),
      started: micros(),
      finished,
      reported: false
    }
    waiting = done
  },
  /** Resolves once every client has every event of the phase, or after `timeoutMs`. */
  wait: async ({ timeoutMs }: { timeoutMs: number }) => {
    const e = expecting as Expectation
    let timer: NodeJS.Timeout | undefined
    await Promise.race([waiting, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))])
    clearTimeout(timer)
    expecting = undefined
    const cpu = process.cpuUsage(e.cpu)
    const elapsed = micros() - e.started
    const latency = e.latencies === undefined ? undefined : percentiles(e.latencies.subarray(0, e.samples))
    return {
      deliveries: e.deliveries,
      expected: e.phase.count * sockets.length,
      seconds: (e.lastAt - e.firstSentAt) / 1e6,
      loadCoreShare: (cpu.user + cpu.system) / elapsed,
      latency
    }
  },
  disconnect: async () => {
    const closing = sockets.map((ws) => new Promise((resolve) => ws.once('close', resolve)))
    for (const ws of sockets) ws.close(1000)
    await Promise.race([Promise.all(closing), new Promise((resolve) => setTimeout(resolve, 5_000))])
    for (const ws of sockets) ws.terminate()
    sockets = []
  },
  exit: () => {
    setImmediate(() => process.exit(0))
  }
})

function percentiles(samples: Float64Array): { p50: number; p99: number; max: number } {
  const sorted = Float64Array.from(samples).sort()
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] ?? Number.NaN }
}
