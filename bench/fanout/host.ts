// The server process around one contender: it starts the contender on 127.0.0.1, tells the orchestrator its port,
// then emits events and measures itself on request. Each contender module calls `host()` once; the orchestrator
// runs it with `--expose-gc` so memory is read after a full collection.
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { nowUs, serveRequests, type ToolCall, toolCall } from './common.js'

export interface ContenderServer {
  readonly port: number
  /** Sends one event (the contender adds its envelope: type, room, seq, ts) to every subscriber of the room. */
  emit(data: ToolCall): void
  /** Connections subscribed to the room. */
  subscribers(): number
}

declare const gc: (() => void) | undefined

export function host(start: () => Promise<ContenderServer>): void {
  start().then(
    (server) => {
      let emitted = 0
      const emitNext = () => server.emit(toolCall(++emitted))
      serveRequests({
        mark: () => ({ cpu: process.cpuUsage(), at: nowUs() }),
        subscribers: () => server.subscribers(),
        // As fast as possible: `batch` events at a time, then one turn of the event loop, so sockets get written.
        burst: async ({ events, batch }) => {
          for (let i = 1; i <= (events as number); i++) {
            emitNext()
            if (i % (batch as number) === 0) await yieldToLoop()
          }
          return { emitted }
        },
        // `perSecond` events a second, each at its due time (timers have a 1 ms grain).
        paced: ({ events, perSecond }) =>
          new Promise((resolve) => {
            const gap = 1e6 / (perSecond as number)
            const t0 = nowUs()
            let k = 0
            const tick = () => {
              const now = nowUs()
              while (k < (events as number) && t0 + k * gap <= now) {
                emitNext()
                k++
              }
              if (k === events) resolve({ emitted })
              else setTimeout(tick, Math.max(0, (t0 + k * gap - nowUs()) / 1e3))
            }
            tick()
          }),
        memory: () => {
          if (typeof gc !== 'function') throw new Error('run the server with --expose-gc')
          gc()
          gc()
          const m = process.memoryUsage()
          return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
        }
      })
      process.send?.({ ready: true, port: server.port })
    },
    (err: unknown) => {
      console.error(err)
      process.exit(1)
    }
  )
  // The orchestrator went away: nothing is left to serve.
  process.on('disconnect', () => process.exit(0))
}
