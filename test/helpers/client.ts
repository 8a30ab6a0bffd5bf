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
