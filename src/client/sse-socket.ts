import { CLOSE_EVENT, EventStreamParser, SSE_SUFFIX } from '../protocol/sse.js'
import type { WebSocketLike } from './api.js'

// The SSE transport of the client, shaped like a WebSocket so that the client drives both the same way. It reads the
// stream with `fetch` (browsers and Node 20 alike: neither needs `EventSource`, and `fetch` can send the token in a
// header), sends with `POST <path>/sse/<sessionId>` and hands each answer to `onmessage` as if it came on the stream.

/** What the socket uses of `fetch`: the global one unless the client was given another. */
export type FetchLike = (
  url: string,
  init: { method?: string; headers: Record<string, string>; body?: string; signal?: AbortSignal }
) => Promise<{
  readonly status: number
  readonly body: ReadableStream<Uint8Array> | null
  text(): Promise<string>
}>

/** What one stream remembers for the next: the last event id, so that a new stream resumes where this one stopped. */
export interface SseMemory {
  lastEventId: string
}

const CONNECTING = 0
const OPEN = 1
const CLOSED = 3
/** What a WebSocket reports when the connection ended without a close frame. */
const ABNORMAL = 1006

/** The HTTP base of the endpoint for a `ws://` or `wss://` URL (its query string is kept for the stream). */
export function httpBase(url: string): { base: string; query: string } {
  const parsed = new URL(url)
  parsed.protocol = parsed.protocol === 'wss:' ? 'https:' : 'http:'
  const query = parsed.search
  parsed.search = ''
  return { base: parsed.toString().replace(/\/$/, ''), query }
}

/** One stream and its POSTs, as a `WebSocketLike`. */
export class SseSocket implements WebSocketLike {
  readyState = CONNECTING
  onopen: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: ((ev: { code: number; reason: string }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  private readonly abort = new AbortController()
  private readonly base: string
  private sessionId: string | undefined
  /** POSTs go one after another, so the server reads them in the order they were sent, as on a socket. */
  private sending: Promise<unknown> = Promise.resolve()
  private closeWith: { code: number; reason: string } | undefined

  constructor(
    url: string,
    private readonly token: string | undefined,
    private readonly memory: SseMemory,
    private readonly fetchImpl: FetchLike
  ) {
    const { base, query } = httpBase(url)
    this.base = base
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    if (memory.lastEventId !== '') headers['last-event-id'] = memory.lastEventId
    // read() settles every failure of the stream itself; what may still escape is a listener's throw on close, which
    // belongs to that listener (the client's go through its handler-error path) and must not be an unhandled rejection.
    this.read(`${base}${SSE_SUFFIX}${query}`, headers).catch(() => undefined)
  }

  private async read(url: string, headers: Record<string, string>): Promise<void> {
    let reason = 'stream ended'
    try {
      const res = await this.fetchImpl(url, { headers, signal: this.abort.signal })
      if (res.status !== 200 || res.body === null) {
        reason = `HTTP ${res.status}`
        await res.text().catch(() => '')
      } else {
        const parser = new EventStreamParser({ event: (type, data) => this.event(type, data) }, this.memory.lastEventId)
        const reader = res.body.getReader()
        const decoder = new TextDecoder()
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          parser.push(decoder.decode(value, { stream: true }))
          // An id may come without an event (the rooms held changed): the next stream resumes from it all the same.
          this.memory.lastEventId = parser.lastId
        }
      }
    } catch {
      reason = 'stream failed'
    }
    this.finish(this.closeWith ?? { code: ABNORMAL, reason })
  }

  private event(event: string, data: string): void {
    if (event === CLOSE_EVENT) {
      this.closeWith = JSON.parse(data) as { code: number; reason: string }
      return
    }
    if (this.readyState === CONNECTING) {
      this.readyState = OPEN
      this.onopen?.({})
    }
    // The first message is `ready`: its connection id names the session the POSTs go to.
    if (this.sessionId === undefined) this.sessionId = (JSON.parse(data) as { data?: { connectionId?: string } }).data?.connectionId
    this.onmessage?.({ data })
  }

  /** The link sends only while the socket is OPEN (`transport.ts`), so the session id is known by then. */
  send(data: string): void {
    const url = `${this.base}${SSE_SUFFIX}/${this.sessionId as string}`
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    this.sending = this.sending.then(async () => {
      try {
        const res = await this.fetchImpl(url, { method: 'POST', headers, body: data, signal: this.abort.signal })
        const text = await res.text()
        // The answer to the message, as the stream would have carried it; a closed session ends the stream anyway.
        if (text !== '' && res.status !== 410 && res.status !== 413 && this.readyState === OPEN) this.onmessage?.({ data: text })
      } catch {
        // The stream's end reports the failure.
      }
    })
  }

  /** The client lets the link go when `onclose` fires, so this never comes after `finish`. */
  close(code = 1000, reason = ''): void {
    this.closeWith = { code, reason }
    this.abort.abort()
  }

  /** Runs once, when `read` ends: no event is parsed after it, so `event` never sees a CLOSED socket. */
  private finish(ev: { code: number; reason: string }): void {
    this.readyState = CLOSED
    this.abort.abort()
    this.onclose?.(ev)
  }
}
