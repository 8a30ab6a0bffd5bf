import type { WebSocketConstructor } from './api.js'
import { type FetchLike, type SseMemory, SseSocket } from './sse-socket.js'
import { type Transport, webSocketTransport } from './transport.js'

/** The transports the client knows, in the order it tries them by default. */
export type TransportName = 'websocket' | 'sse'
export const DEFAULT_TRANSPORTS: readonly TransportName[] = ['websocket', 'sse']

/**
 * Which transport the next connection uses. A connection that never reached `ready` (an upgrade a proxy refused, a
 * network that drops it, a timeout) moves on to the next transport of the list; one that reached `ready` is
 * remembered, and every reconnect uses it first.
 */
export class TransportPicker {
  private index = 0
  /** The last event id of the SSE streams, so that a new stream resumes where the last one stopped. */
  private readonly memory: SseMemory = { lastEventId: '' }

  constructor(
    private readonly order: readonly TransportName[],
    private readonly ws: WebSocketConstructor | undefined,
    private readonly fetchImpl: FetchLike | undefined
  ) {
    if (order.length === 0 || order.some((name) => name !== 'websocket' && name !== 'sse')) {
      throw new TypeError(`fastify-realtime/client: transports must list "websocket" and/or "sse" (got ${JSON.stringify(order)})`)
    }
    // A transport this runtime cannot use is left out.
    this.order = order.filter((name) => (name === 'websocket' ? ws !== undefined : fetchImpl !== undefined))
    if (this.order.length === 0) {
      throw new TypeError(
        'fastify-realtime/client: no WebSocket implementation found and no fetch for SSE; in Node, pass `WebSocket` from the "ws" package'
      )
    }
  }

  /** The transport of the connection being made (or held). */
  get current(): TransportName {
    return this.order[this.index] as TransportName
  }

  /**
   * The client's `Transport`: each link opens on the current transport. The SSE socket behaves as a WebSocket does
   * (open, message, close events), so the WebSocket transport's link logic serves both.
   */
  transport(): Transport {
    return {
      open: (url, token, on) => {
        const Impl: WebSocketConstructor = this.current === 'sse' ? this.sseConstructor(token) : (this.ws as WebSocketConstructor)
        return webSocketTransport(Impl).open(url, token, on)
      }
    }
  }

  private sseConstructor(token: string | undefined): WebSocketConstructor {
    const { memory, fetchImpl } = this
    return class extends SseSocket {
      constructor(url: string) {
        super(url, token, memory, fetchImpl as FetchLike)
      }
    }
  }

  /** A connection never reached `ready`: the next one tries the next transport. */
  failed(): void {
    this.index = (this.index + 1) % this.order.length
  }
}
