import Fastify, { type FastifyInstance } from 'fastify'
import { aguiEvents } from '../../src/ag-ui/index.js'
import type { AguiHandler, AguiRouteOptions } from '../../src/ag-ui/route.js'
import realtime, { type RealtimeOptions } from '../../src/index.js'
import { EventStreamParser } from '../../src/protocol/sse.js'
import { SECRET } from '../helpers/index.js'

interface Test {
  teardown(fn: () => unknown): void
}

/** Room histories big enough to hold whole runs, as the README tells AG-UI apps to configure. */
export const aguiHistory = {
  rooms: (room: string) => (room.startsWith('agui:') ? { size: 10_000, ttl: 60_000 } : undefined)
}

/** An app with the AG-UI preset and one AG-UI route at /agent, listening on 127.0.0.1. */
export async function aguiApp(
  t: Test,
  handler: AguiHandler,
  options: RealtimeOptions = {},
  route: AguiRouteOptions = {}
): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(realtime, { jwt: { secret: SECRET }, events: aguiEvents, history: aguiHistory, ...options })
  app.realtime.agui.route('/agent', handler, route)
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(() => app.close())
  return app
}

export function httpUrl(app: FastifyInstance, path = '/agent'): string {
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('app is not listening on TCP')
  return `http://127.0.0.1:${address.port}${path}`
}

export interface SseEvent {
  id: string | undefined
  event: any
}

/**
 * Reads an event stream with the package's own reader: each event with the last id in effect when it came (its own,
 * when it had one). `until()` can stop midway and be called again.
 */
export class SseReader {
  readonly events: SseEvent[] = []
  done = false
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>
  private readonly decoder = new TextDecoder()
  private readonly parser = new EventStreamParser({
    event: (_type, data, lastId) => this.events.push({ id: lastId === '' ? undefined : lastId, event: JSON.parse(data) })
  })

  constructor(res: Response) {
    this.reader = (res.body as ReadableStream<Uint8Array>).getReader()
  }

  /** Reads until `stop(events)` holds or the stream ends; resolves with every event read so far. */
  async until(stop: (events: SseEvent[]) => boolean = () => false): Promise<SseEvent[]> {
    while (!this.done && !stop(this.events)) {
      const { done, value } = await this.reader.read()
      if (done) {
        this.done = true
        break
      }
      this.parser.push(this.decoder.decode(value, { stream: true }))
    }
    return this.events
  }

  /** Drops the connection, as a client that went away. */
  cut(): Promise<void> {
    return this.reader.cancel()
  }
}

/** Reads an event stream to its end, or until `stop(events)` holds (then the connection is dropped). */
export async function readSse(res: Response, stop?: (events: SseEvent[]) => boolean): Promise<SseEvent[]> {
  const reader = new SseReader(res)
  const events = await reader.until(stop)
  if (!reader.done) await reader.cut()
  return events
}

export function input(threadId: string, runId: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { threadId, runId, messages: [{ id: 'm1', role: 'user', content: 'hello' }], tools: [], context: [], ...extra }
}

export function post(app: FastifyInstance, body: unknown): Promise<Response> {
  return fetch(httpUrl(app), {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
    body: JSON.stringify(body)
  })
}
