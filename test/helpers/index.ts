import { createSigner } from 'fast-jwt'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import WebSocket from 'ws'
import realtime, { type RealtimeOptions } from '../../src/index.js'
import { explainServerMessage } from './conformance.js'

export const SECRET = 'test-secret-that-is-long-enough-for-hs256!!'

const signer = createSigner({ key: SECRET })

/** A token for `sub`, signed with the test secret, valid for an hour unless `claims` say otherwise. */
export function sign(sub: string | undefined, claims: Record<string, unknown> = {}, key = SECRET): string {
  const payload: Record<string, unknown> = { exp: Math.floor(Date.now() / 1000) + 3600, ...claims }
  if (sub !== undefined) payload.sub = sub
  return key === SECRET ? signer(payload) : createSigner({ key })(payload)
}

interface Test {
  teardown(fn: () => unknown): void
}

export interface BuildOptions {
  fastify?: FastifyServerOptions
  /** Runs before the plugin is registered (to register host plugins first). */
  before?: (app: FastifyInstance) => unknown
}

/** A Fastify app with the plugin, listening on 127.0.0.1 on a free port, closed when the test ends. */
export async function buildApp(t: Test, options: RealtimeOptions = {}, build: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify(build.fastify ?? { logger: false })
  await build.before?.(app)
  await app.register(realtime, { jwt: { secret: SECRET }, ...options })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return app
}

export function wsUrl(app: FastifyInstance, path = '/ws'): string {
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('app is not listening on TCP')
  return `ws://127.0.0.1:${address.port}${path}`
}

export interface Frame {
  type: string
  id?: string
  room?: string
  seq?: number
  data?: any
  ts?: string
  [key: string]: unknown
}

/**
 * A test client that queues every frame, so none is missed between two awaits, and checks each one against the
 * realtime.v1 schemas: a frame that does not conform makes every later `next()` throw.
 */
export class TestClient {
  readonly frames: Frame[] = []
  readonly violations: string[] = []
  private waiters: Array<() => void> = []
  /** The `ready` frame, taken off the queue by `connect()`. */
  ready: Frame = { type: 'none' }
  closeCode: number | undefined
  closeReason = ''
  readonly closed: Promise<{ code: number; reason: string }>

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const parsed = JSON.parse(String(data))
      for (const f of Array.isArray(parsed) ? parsed : [parsed]) {
        const problem = explainServerMessage(f)
        if (problem !== undefined || isBinary) this.violations.push(`${problem ?? 'binary frame'}: ${JSON.stringify(f).slice(0, 200)}`)
        this.frames.push(f as Frame)
      }
      this.wake()
    })
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code
        this.closeReason = reason.toString()
        this.wake()
        resolve({ code, reason: this.closeReason })
      })
    })
    ws.on('error', () => {})
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  /** The next frame (of `type`, when given; frames of other types before it are skipped and kept). */
  next(type?: string, timeoutMs = 3000): Promise<Frame> {
    return this.nextWhere(type === undefined ? () => true : (f) => f.type === type, type ?? 'a frame', timeoutMs)
  }

  /** The first queued frame that matches, waiting for it; the frames before it stay queued. */
  async nextWhere(match: (frame: Frame) => boolean, what: string, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.violations.length > 0) throw new Error(`the server sent frames outside realtime.v1: ${this.violations.join('; ')}`)
      const i = this.frames.findIndex(match)
      if (i !== -1) return this.frames.splice(i, 1)[0] as Frame
      if (this.closeCode !== undefined) throw new Error(`closed (${this.closeCode}) while waiting for ${what}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; queued: ${JSON.stringify(this.frames.slice(0, 5))}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Waits until `n` frames of `type` have arrived and returns them in order. */
  async collect(type: string, n: number, timeoutMs = 5000): Promise<Frame[]> {
    const out: Frame[] = []
    while (out.length < n) out.push(await this.next(type, timeoutMs))
    return out
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /** Sends a message with an id and waits for the `ack` or `error` that carries it. */
  async call(message: Record<string, unknown>): Promise<Frame> {
    const id = String(message.id ?? `t${Math.random().toString(36).slice(2)}`)
    this.send({ ...message, id })
    return this.nextWhere((f) => f.id === id, `the answer to ${id}`)
  }

  async subscribe(room: string, data?: unknown): Promise<Frame> {
    const reply = await this.call({ type: 'subscribe', room, ...(data === undefined ? {} : { data }) })
    return reply
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close()
    return this.closed
  }
}

export interface ConnectOptions {
  token?: string | null
  protocols?: string[]
  headers?: Record<string, string>
  path?: string
  query?: string
  /** What the client offers for permessage-deflate (ws offers it by default). */
  perMessageDeflate?: WebSocket.ClientOptions['perMessageDeflate']
}

/** Connects with `Authorization: Bearer <token>` (or as `options` say) and waits for `ready`. */
export async function connect(app: FastifyInstance, sub = 'alice', options: ConnectOptions = {}): Promise<TestClient> {
  const ws = open(app, sub, options)
  const client = new TestClient(ws)
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    ws.once('error', reject)
  })
  client.ready = await client.next('ready')
  return client
}

export function open(app: FastifyInstance, sub = 'alice', options: ConnectOptions = {}): WebSocket {
  const token = options.token === undefined ? sign(sub) : options.token
  const headers: Record<string, string> = { ...options.headers }
  if (token !== null && options.protocols === undefined && options.query === undefined) headers.authorization = `Bearer ${token}`
  const url = wsUrl(app, options.path) + (options.query ?? '')
  const deflate = options.perMessageDeflate === undefined ? {} : { perMessageDeflate: options.perMessageDeflate }
  return new WebSocket(url, options.protocols ?? [], { headers, ...deflate })
}

export interface Refusal {
  status: number
  body: any
  headers: Record<string, string | string[] | undefined>
}

/** Attempts an upgrade that must be refused; resolves with the HTTP status and JSON body. */
export function refused(app: FastifyInstance, sub = 'alice', options: ConnectOptions = {}): Promise<Refusal> {
  const ws = open(app, sub, options)
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.terminate()
      reject(new Error('the upgrade was accepted'))
    })
    ws.once('unexpected-response', (_req, res) => {
      let body = ''
      res.on('data', (c: Buffer) => {
        body += c.toString()
      })
      res.on('end', () => {
        resolve({ status: res.statusCode as number, body: body === '' ? undefined : JSON.parse(body), headers: res.headers })
      })
    })
    ws.once('error', (err) => reject(err))
  })
}

/** Collects every log line the app writes, as parsed JSON objects. */
export function logCapture(level = 'info') {
  const lines: string[] = []
  const stream = {
    write(line: string) {
      lines.push(line)
    }
  }
  return {
    lines,
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
    fastify: { logger: { level, stream } } as FastifyServerOptions
  }
}

export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Collects uncaught exceptions and unhandled rejections until the test ends (a reliability test expects none). */
export function catchUncaught(t: Test): unknown[] {
  const uncaught: unknown[] = []
  const onError = (e: unknown) => uncaught.push(e)
  process.on('uncaughtException', onError)
  process.on('unhandledRejection', onError)
  t.teardown(() => {
    process.off('uncaughtException', onError)
    process.off('unhandledRejection', onError)
  })
  return uncaught
}

/** A promise and what settles it, for a test that waits until something happened, or holds something back until told. */
export function latch<T = void>(): { readonly done: Promise<T>; open(value: T): void } {
  let open: (value: T) => void = () => {}
  const done = new Promise<T>((resolve) => {
    open = resolve
  })
  return { done, open: (value) => open(value) }
}
