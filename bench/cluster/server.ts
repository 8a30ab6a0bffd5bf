// One instance of a contender, in a process of its own on 127.0.0.1, driven by the benchmark over IPC.
//
//   argv: <contender>      env: BENCH_REDIS_URL, BENCH_JWT_SECRET
//
// fastify-realtime: Fastify with the plugin (JWT auth on the upgrade, an `authorize` hook, history on, the default)
// and `redisAdapter`. Socket.IO 4: a plain HTTP server with the WebSocket transport only, a JWT check in a middleware,
// a `subscribe` event that joins the room, and `@socket.io/redis-adapter`. Both verify tokens with fast-jwt.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAdapter } from '@socket.io/redis-adapter'
import { createVerifier } from 'fast-jwt'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { Server } from 'socket.io'
import { redisAdapter } from '../../src/adapters/redis.js'
import realtime from '../../src/index.js'
import { type Contender, micros, type Phase, ROOM, serve, thought } from './common.js'

const contender = process.argv[2] as Contender
const url = process.env.BENCH_REDIS_URL as string
const secret = process.env.BENCH_JWT_SECRET as string

interface Instance {
  readonly port: number
  /** Emits event `step` of the phase to the room; failures are counted, never thrown. */
  emit(tag: string, step: number): void
  close(): Promise<void>
}

let errors = 0

async function fastifyRealtime(): Promise<Instance> {
  const app = Fastify({ logger: false })
  await app.register(realtime, {
    jwt: { secret },
    authorize: ({ room }) => room === ROOM,
    adapter: redisAdapter({ url, keyPrefix: 'bench:rt:' })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    port: (app.server.address() as AddressInfo).port,
    emit(tag, step) {
      app.realtime.emit(ROOM, { type: 'agent:thought', data: thought(tag, step) }).catch(() => {
        errors++
      })
    },
    close: () => app.close()
  }
}

async function socketIo(): Promise<Instance> {
  const verify = createVerifier({ key: secret, algorithms: ['HS256'] })
  const pub = new Redis(url)
  const sub = pub.duplicate()
  const http = createServer()
  const io = new Server(http, { transports: ['websocket'], serveClient: false, adapter: createAdapter(pub, sub, { key: 'bench:sio' }) })
  io.use((socket, next) => {
    try {
      socket.data.user = verify(String(socket.handshake.auth.token))
      next()
    } catch {
      next(new Error('unauthorized'))
    }
  })
  io.on('connection', (socket) => {
    socket.on('subscribe', (room: unknown, ack: (ok: boolean) => void) => {
      if (room !== ROOM) return ack(false)
      socket.join(room)
      ack(true)
    })
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  return {
    port: (http.address() as AddressInfo).port,
    emit(tag, step) {
      io.to(ROOM).emit('agent:thought', thought(tag, step))
    },
    async close() {
      await io.close()
      pub.disconnect()
      sub.disconnect()
    }
  }
}

const instance = contender === 'socket.io' ? await socketIo() : await fastifyRealtime()

// The phase being emitted: with a window, `pump` emits while fewer than `window` events are undelivered (the load
// process reports how many are, through the benchmark); with a rate, a timer keeps to it.
let current: { phase: Phase; next: number; delivered: number; timer?: NodeJS.Timeout } | undefined

function pump(): void {
  const run = current
  if (run === undefined) return
  const { phase } = run
  const limit = phase.window === undefined ? phase.count : Math.min(phase.count, run.delivered + phase.window)
  while (run.next < limit) instance.emit(phase.tag, run.next++)
}

function paced(phase: Phase, rate: number): NodeJS.Timeout {
  const start = micros()
  const timer = setInterval(() => {
    const run = current
    if (run === undefined) return
    const due = Math.min(phase.count, Math.floor(((micros() - start) / 1e6) * rate) + 1)
    while (run.next < due) instance.emit(phase.tag, run.next++)
    if (run.next >= phase.count) clearInterval(timer)
  }, 2)
  return timer
}

serve({
  ready: () => ({ port: instance.port, pid: process.pid }),
  cpu: () => {
    const { user, system } = process.cpuUsage()
    return user + system
  },
  start: (phase: Phase) => {
    current = { phase, next: 0, delivered: 0 }
    if (phase.rate !== undefined) current.timer = paced(phase, phase.rate)
    else pump()
  },
  delivered: (n: number) => {
    if (current === undefined) return
    current.delivered = n
    pump()
  },
  finish: () => {
    clearInterval(current?.timer)
    const emitted = current?.next ?? 0
    current = undefined
    const failed = errors
    errors = 0
    return { emitted, errors: failed }
  },
  close: async () => {
    await instance.close()
    setImmediate(() => process.exit(0))
  }
})
