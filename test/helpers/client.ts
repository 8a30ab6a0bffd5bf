import type { FastifyInstance } from 'fastify'
import WebSocket, { WebSocketServer } from 'ws'
import { type ClientOptions, createClient, type RealtimeClient } from '../../src/client/index.js'
import type { AgentEvents, EventRegistry } from '../../src/index.js'
import { wsUrl } from './index.js'

interface Test {
  teardown(fn: () => unknown): void
}

/** An SDK client in Node (with `ws`), fast to reconnect, closed when the test ends. */
export function sdk(
  t: Test,
  app: FastifyInstance | string,
  options: Partial<ClientOptions<AgentEvents>> = {}
): RealtimeClient<AgentEvents, EventRegistry> {
  const client = createClient<AgentEvents>({
    url: typeof app === 'string' ? app : wsUrl(app),
    WebSocket: WebSocket as never,
    reconnect: { initialDelay: 20, maxDelay: 100 },
    ...options
  })
  t.teardown(() => client.close())
  return client
}

/** Resolves when `check()` holds, polling every few ms; rejects after `ms`. */
export async function until(check: () => boolean, ms = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A scripted server for what a correct server never does (go silent, skip a seq): it runs `script` per connection. */
export async function scriptedServer(
  t: Test,
  script: (socket: WebSocket, received: unknown[]) => void
): Promise<{ url: string; connections: () => number }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'realtime.v1' })
  await new Promise((resolve) => server.once('listening', resolve))
  let connections = 0
  server.on('connection', (socket) => {
    connections++
    const received: unknown[] = []
    socket.on('message', (m) => received.push(JSON.parse(String(m))))
    script(socket, received)
  })
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of server.clients) c.terminate()
        server.close(() => resolve())
      })
  )
  const { port } = server.address() as { port: number }
  return { url: `ws://127.0.0.1:${port}/ws`, connections: () => connections }
}

/** What a client saw of one room: every seq, the gaps between them, and each `subscribed`. */
export interface RoomWatch {
  readonly seqs: number[]
  /** Events whose seq did not follow the one before, with no `subscribed` between: silent gaps. */
  gaps: number
  subscribed: number
  /** `subscribed` answers after the first that said `recovered: false`. */
  notRecovered: number
}

/** Subscribes `client` to `room` and keeps a `RoomWatch` of it. A `recovered: false` restarts the count from its seq. */
export function watchRoom(client: RealtimeClient<AgentEvents, EventRegistry>, room: string): RoomWatch {
  const watch: RoomWatch = { seqs: [], gaps: 0, subscribed: 0, notRecovered: 0 }
  let last = 0
  client.subscribe(
    room,
    (e) => {
      if (e.seq !== last + 1) watch.gaps++
      last = e.seq as number
      watch.seqs.push(last)
    },
    {
      onSubscribed: (info) => {
        watch.subscribed++
        if (!info.recovered && watch.subscribed > 1) watch.notRecovered++
        if (!info.recovered) last = info.seq
      }
    }
  )
  return watch
}
