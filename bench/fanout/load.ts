// The load process: opens the clients, one raw `ws` client each, speaking the contender's wire protocol
// (fastify-realtime's realtime.v1, the plain protocol of the raw contenders, or Socket.IO's Engine.IO framing),
// counts every event each client receives, checks its seq follows on, and records the latency from the moment the
// server emitted the event (stamped in it) to its arrival here. Commands come from the orchestrator over IPC.
import { createHistogram } from 'node:perf_hooks'
import { createSigner } from 'fast-jwt'
import WebSocket from 'ws'
import { nowUs, PATH, ROOM, SECRET, serveRequests } from './common.js'
import { SseWire } from './sse-wire.js'

export type Protocol = 'realtime' | 'plain' | 'socketio' | 'sse'

const sign = createSigner({ key: SECRET, expiresIn: 3_600_000 })
const SEQ = Buffer.from('"seq":')
const SENT_AT = Buffer.from('"sentAt":')
const SUBSCRIBED = Buffer.from('"type":"subscribed"')
const READY = Buffer.from('"type":"ready"')

/** The unsigned integer written right after `key` in `buf`, or -1. */
function intAfter(buf: Buffer, key: Buffer): number {
  const at = buf.indexOf(key)
  if (at === -1) return -1
  let n = 0
  let i = at + key.length
  for (; i < buf.length; i++) {
    const c = buf[i] as number
    if (c < 48 || c > 57) break
    n = n * 10 + c - 48
  }
  return i === at + key.length ? -1 : n
}

const latency = createHistogram()
const clients: Client[] = []
/** Per phase: events each client should get, and what arrived. */
const phase = {
  cpu: process.cpuUsage(),
  expected: 0,
  remaining: 0,
  delivered: 0,
  extra: 0,
  unexpected: 0,
  outOfOrder: 0,
  firstSentAt: Infinity,
  lastAt: 0
}
let phaseDone: (() => void) | undefined

class Client {
  lastSeq = 0
  received = 0
  subscribed = false

  constructor(
    readonly ws: WebSocket,
    readonly protocol: Protocol
  ) {}

  onEvent(buf: Buffer): void {
    const at = nowUs()
    const seq = intAfter(buf, SEQ)
    const sentAt = intAfter(buf, SENT_AT)
    if (seq === -1 || sentAt === -1) {
      phase.unexpected++
      return
    }
    if (seq !== this.lastSeq + 1) phase.outOfOrder++
    this.lastSeq = seq
    latency.record(Math.max(1, at - sentAt))
    if (sentAt < phase.firstSentAt) phase.firstSentAt = sentAt
    phase.lastAt = at
    if (++this.received > phase.expected) {
      phase.extra++
      return
    }
    phase.delivered++
    if (--phase.remaining === 0) phaseDone?.()
  }
}

/** Opens one authenticated connection: resolves once the server has accepted the token. */
function open(protocol: Protocol, port: number, token: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const base = `ws://127.0.0.1:${port}`
    const options = { perMessageDeflate: false, handshakeTimeout: 60_000, headers: { authorization: `Bearer ${token}` } }
    const ws = (
      protocol === 'sse'
        ? new SseWire(`http://127.0.0.1:${port}${PATH}`, token)
        : protocol === 'realtime'
          ? new WebSocket(`${base}${PATH}`, ['realtime.v1'], options)
          : protocol === 'plain'
            ? new WebSocket(`${base}${PATH}`, options)
            : new WebSocket(`${base}/socket.io/?EIO=4&transport=websocket`, { perMessageDeflate: false, handshakeTimeout: 60_000 })
    ) as WebSocket
    const client = new Client(ws, protocol)
    let settled = false
    const accept = () => {
      settled = true
      resolve(client)
    }
    ws.on('error', (err) => {
      if (!settled) reject(err)
      settled = true
    })
    ws.on('close', (code) => {
      if (!settled) reject(new Error(`closed with ${code} before it was accepted`))
      settled = true
    })
    if (protocol === 'plain') ws.once('open', accept)
    ws.on('message', (buf: Buffer) => {
      if (client.subscribed) {
        // Engine.IO: the server's ping ("2") must be answered ("3"); an event is `42["event",{…}]`.
        if (protocol === 'socketio' && buf.length === 1 && buf[0] === 0x32) ws.send('3')
        else client.onEvent(buf)
        return
      }
      if ((protocol === 'realtime' || protocol === 'sse') && !settled && buf.includes(READY)) accept()
      else if (protocol === 'socketio') {
        const text = buf.toString()
        if (text.startsWith('0{')) ws.send(`40${JSON.stringify({ token })}`)
        else if (text.startsWith('40')) accept()
        else if (text.startsWith('44')) ws.close()
        else if (text === '2') ws.send('3')
      }
    })
  })
}

/** Subscribes to the room; resolves on the server's answer. */
function subscribe(client: Client): Promise<void> {
  return new Promise((resolve, reject) => {
    const { ws } = client
    const onMessage = (buf: Buffer) => {
      const yes = client.protocol === 'socketio' ? buf.toString().startsWith('430') : buf.includes(SUBSCRIBED)
      if (!yes) return
      ws.off('message', onMessage)
      ws.off('close', onClose)
      client.subscribed = true
      resolve()
    }
    const onClose = (code: number) => reject(new Error(`closed with ${code} while subscribing`))
    ws.on('message', onMessage)
    ws.once('close', onClose)
    if (client.protocol === 'socketio') ws.send(`420${JSON.stringify(['subscribe', ROOM])}`)
    else if (client.protocol === 'realtime' || client.protocol === 'sse')
      ws.send(JSON.stringify({ type: 'subscribe', id: 's', room: ROOM }))
    else ws.send(JSON.stringify({ type: 'subscribe', room: ROOM }))
  })
}

serveRequests({
  // Opens `count` clients, `concurrency` at a time, users `firstUser`… (tokens are signed before the clock starts).
  connect: async ({ protocol, port, count, concurrency, firstUser, join }) => {
    const tokens = Array.from({ length: count as number }, (_, i) => sign({ sub: `user-${(firstUser as number) + i}` }))
    const errors: string[] = []
    let next = 0
    let failed = 0
    const startedAt = nowUs()
    const worker = async () => {
      while (next < tokens.length) {
        const token = tokens[next++] as string
        try {
          const client = await open(protocol as Protocol, port as number, token)
          if (join === true) await subscribe(client)
          clients.push(client)
        } catch (err) {
          failed++
          if (errors.length < 5) errors.push(String((err as Error).message ?? err))
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency as number, tokens.length) }, worker))
    return { connected: tokens.length - failed, failed, errors, startedAt, endedAt: nowUs() }
  },
  // Starts a phase: every subscribed client should now get `events` events.
  arm: ({ events }) => {
    const subscribed = clients.filter((c) => c.subscribed)
    for (const c of subscribed) c.received = 0
    Object.assign(phase, { expected: events, remaining: subscribed.length * (events as number), delivered: 0, extra: 0 })
    Object.assign(phase, { unexpected: 0, outOfOrder: 0, firstSentAt: Infinity, lastAt: 0 })
    latency.reset()
    phase.cpu = process.cpuUsage()
    return { clients: subscribed.length }
  },
  // Resolves when every client got every event of the phase, or after `timeoutMs` with what arrived.
  wait: ({ timeoutMs }) =>
    new Promise((resolve) => {
      const finish = (complete: boolean) => {
        clearTimeout(timer)
        phaseDone = undefined
        const cpu = process.cpuUsage(phase.cpu)
        resolve({
          complete,
          delivered: phase.delivered,
          missing: phase.remaining,
          extra: phase.extra,
          unexpected: phase.unexpected,
          outOfOrder: phase.outOfOrder,
          firstSentAt: phase.firstSentAt,
          lastAt: phase.lastAt,
          latencyUs: { p50: latency.percentile(50), p99: latency.percentile(99), max: latency.max, count: latency.count },
          loadCpuUs: cpu.user + cpu.system
        })
      }
      const timer = setTimeout(() => finish(false), timeoutMs as number)
      if (phase.remaining === 0) finish(true)
      else phaseDone = () => finish(true)
    }),
  count: () => ({
    open: clients.filter((c) => c.ws.readyState === WebSocket.OPEN).length,
    subscribed: clients.filter((c) => c.subscribed).length
  })
})

process.on('disconnect', () => process.exit(0))
