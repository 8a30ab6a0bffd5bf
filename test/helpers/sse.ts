import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import type { RealtimeOptions } from '../../src/index.js'
import { EventStreamParser } from '../../src/protocol/sse.js'
import { type BuildOptions, buildApp, type Frame, sign } from './index.js'

/**
 * `buildApp` for stream tests. After a stream is aborted, fetch may open a spare connection that never sends a
 * request; Node's server waits for such a socket on close (until its headers timeout), so these apps close every one.
 */
export function streamApp(
  t: { teardown(fn: () => unknown): void },
  options: RealtimeOptions = {},
  fastify: FastifyServerOptions = {},
  build: Omit<BuildOptions, 'fastify'> = {}
): Promise<FastifyInstance> {
  return buildApp(t, options, { ...build, fastify: { logger: false, forceCloseConnections: true, ...fastify } })
}

/** One parsed text/event-stream event. */
export interface SseEvent {
  readonly event: string
  readonly data: string
  /** The last id in effect when the event was dispatched (the SSE `lastEventId`). */
  readonly lastId: string
}

export function baseUrl(app: FastifyInstance, path = '/ws'): string {
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('app is not listening on TCP')
  return `http://127.0.0.1:${address.port}${path}`
}

/** The package's own stream reader, counting comments and keeping `retry:`, as the tests look at both. */
export class SseParser {
  retry: number | undefined
  comments = 0
  private readonly parser: EventStreamParser

  constructor(dispatch: (event: SseEvent) => void) {
    this.parser = new EventStreamParser({
      event: (event, data, lastId) => dispatch({ event, data, lastId }),
      comment: () => {
        this.comments++
      },
      retry: (ms) => {
        this.retry = ms
      }
    })
  }

  get lastId(): string {
    return this.parser.lastId
  }

  push(chunk: string): void {
    this.parser.push(chunk)
  }
}

export interface OpenOptions {
  token?: string | null
  rooms?: string[]
  lastEventId?: string
  /** Send the last id as `?lastEventId=` instead of the header. */
  inQuery?: boolean
  ticket?: string
  headers?: Record<string, string>
  path?: string
}

/** A raw `fetch` stream client: queues every message (and the `close` event), as `TestClient` does. */
export class SseClient {
  readonly frames: Frame[] = []
  readonly parser: SseParser
  closeEvent: { code: number; reason: string } | undefined
  ended = false
  ready: Frame = { type: 'none' }
  private waiters: Array<() => void> = []
  private readonly abort = new AbortController()

  constructor(
    readonly response: Response,
    readonly base: string,
    readonly token: string
  ) {
    this.parser = new SseParser((event) => {
      if (event.event === 'close') this.closeEvent = JSON.parse(event.data)
      else this.frames.push(JSON.parse(event.data) as Frame)
      this.wake()
    })
  }

  get lastId(): string {
    return this.parser.lastId
  }

  /** Reads the body until it ends or `cut()` is called. */
  async pump(): Promise<void> {
    const decoder = new TextDecoder()
    try {
      for await (const chunk of this.response.body as unknown as AsyncIterable<Uint8Array>) {
        this.parser.push(decoder.decode(chunk, { stream: true }))
      }
    } catch {
      // Cut by the client or the server.
    }
    this.ended = true
    this.wake()
  }

  get signal(): AbortSignal {
    return this.abort.signal
  }

  /** Drops the stream from the client side. */
  cut(): void {
    this.abort.abort()
  }

  private wake(): void {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  async nextWhere(match: (frame: Frame) => boolean, what: string, timeoutMs = 3000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const i = this.frames.findIndex(match)
      if (i !== -1) return this.frames.splice(i, 1)[0] as Frame
      if (this.ended) throw new Error(`stream ended while waiting for ${what}`)
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

  next(type: string, timeoutMs = 3000): Promise<Frame> {
    return this.nextWhere((f) => f.type === type, type, timeoutMs)
  }

  async collect(type: string, n: number, timeoutMs = 5000): Promise<Frame[]> {
    const out: Frame[] = []
    while (out.length < n) out.push(await this.next(type, timeoutMs))
    return out
  }

  /** Waits for the stream to end (server side). */
  async closed(timeoutMs = 3000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!this.ended) {
      if (Date.now() > deadline) throw new Error('the stream did not end')
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now())
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** POSTs a client message (an object, or raw text) to the stream's session. */
  async post(message: unknown, token = this.token): Promise<{ status: number; body: any; text: string }> {
    const res = await fetch(`${this.base}/sse/${this.ready.data.connectionId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: typeof message === 'string' ? message : JSON.stringify(message)
    })
    const text = await res.text()
    let body: unknown
    try {
      body = text === '' ? undefined : JSON.parse(text)
    } catch {
      body = text
    }
    return { status: res.status, body, text }
  }
}

/** The URL of a stream. */
export function streamUrl(base: string, options: OpenOptions = {}): string {
  const params = new URLSearchParams()
  for (const room of options.rooms ?? []) params.append('room', room)
  if (options.inQuery === true && options.lastEventId !== undefined) params.set('lastEventId', options.lastEventId)
  if (options.ticket !== undefined) params.set('ticket', options.ticket)
  const query = params.toString()
  return `${base}/sse${query === '' ? '' : `?${query}`}`
}

/** Opens a stream as `sub`; resolves with the raw response when it is not a 200. */
export async function openStream(app: FastifyInstance, sub = 'alice', options: OpenOptions = {}): Promise<SseClient> {
  const base = baseUrl(app, options.path)
  const token = options.token === undefined ? sign(sub) : options.token
  const headers: Record<string, string> = { accept: 'text/event-stream', ...options.headers }
  if (token !== null && options.ticket === undefined) headers.authorization = `Bearer ${token}`
  if (options.lastEventId !== undefined && options.inQuery !== true) headers['last-event-id'] = options.lastEventId
  const controller = new AbortController()
  const response = await fetch(streamUrl(base, options), { headers, signal: controller.signal })
  const client = new SseClient(response, base, token ?? '')
  client.signal.addEventListener('abort', () => controller.abort())
  if (response.status !== 200) return client
  void client.pump()
  client.ready = await client.next('ready')
  return client
}
