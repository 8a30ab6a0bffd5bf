import { BEARER_PREFIX, SUBPROTOCOL } from '../protocol/constants.js'
import type { ConnectionError, WebSocketConstructor, WebSocketLike } from './api.js'

/**
 * How the client reaches the server. The client speaks `realtime.v1` frames and knows nothing else of the wire: a
 * transport opens one link with a token, hands every received text over, and reports the end with a close code and
 * reason. The WebSocket is the first; a second one (Server-Sent Events over `fetch` streaming, with a POST route for
 * what the client sends) implements the same interface, so a `transports` list can be tried in order.
 */
export interface Transport {
  open(url: string, token: string | undefined, on: LinkEvents): Link
}

export interface LinkEvents {
  /** The text of one received frame (a JSON object or a batch array). */
  message(text: string): void
  /** The link ended; `opened` is false when it never got as far as an open connection (e.g. the upgrade was refused). */
  close(code: number, reason: string, opened: boolean): void
}

/** One open (or opening) link. After `close()` or `drop()`, no event of it reaches the client any more. */
export interface Link {
  /** Writes one frame; false when the link is not open (nothing was written). */
  send(text: string): boolean
  /** Ends the link with a close handshake. */
  close(code: number, reason: string): void
  /** Ends the link at once, for a peer that went silent. */
  drop(): void
}

const OPEN = 1

/** The WebSocket transport: the token travels as the `bearer.<jwt>` subprotocol, never in the URL. */
export function webSocketTransport(Impl: WebSocketConstructor): Transport {
  return {
    open(url, token, on) {
      const ws: WebSocketLike = new Impl(url, token === undefined ? [SUBPROTOCOL] : [SUBPROTOCOL, `${BEARER_PREFIX}${token}`])
      let opened = false
      const detach = (): void => {
        ws.onopen = ws.onmessage = ws.onclose = null
      }
      ws.onopen = () => {
        opened = true
      }
      ws.onmessage = (ev) => on.message(String(ev.data))
      ws.onclose = (ev) => {
        detach()
        on.close(ev.code, ev.reason, opened)
      }
      // A refused upgrade (401, 403, network down) ends in onclose as well.
      ws.onerror = () => {}
      return {
        send(text) {
          if (ws.readyState !== OPEN) return false
          ws.send(text)
          return true
        },
        close(code, reason) {
          detach()
          ws.close(code, reason)
        },
        drop() {
          detach()
          const terminate = (ws as { terminate?: () => void }).terminate
          if (typeof terminate === 'function') terminate.call(ws)
          else ws.close(4000, 'heartbeat timeout')
        }
      }
    }
  }
}

/** What a plain HTTP request to the endpoint answered: a browser's WebSocket cannot see why an upgrade failed. */
export interface Refusal {
  readonly status: number
  readonly body: unknown
}

/**
 * Asks the endpoint over HTTP why upgrades fail: the server runs the same checks for a plain GET and answers the same
 * 401/403 JSON. First without credentials (a request a browser sends without a CORS preflight, so a refused origin's
 * 403 can be read), then with the token if that one only missed it. Undefined when fetch is missing or fails.
 */
export async function preflight(url: string, token: string | undefined): Promise<Refusal | undefined> {
  if (typeof fetch !== 'function') return undefined
  const http = url.replace(/^ws/i, 'http')
  try {
    let res = await fetch(http)
    if (res.status === 401 && token !== undefined) res = await fetch(http, { headers: { authorization: `Bearer ${token}` } })
    const text = await res.text()
    let body: unknown = text
    try {
      body = JSON.parse(text)
    } catch {}
    return { status: res.status, body }
  } catch {
    return undefined
  }
}

/**
 * What a close code says about the connection, for `onError`. Codes not listed are not failures of their own: 1000
 * (normal), 1006 (lost), 4008 and 4010 (reconnect and resume); the state change carries them.
 */
export const CLOSE_KINDS: Record<number, ConnectionError['kind']> = {
  1001: 'going_away',
  1002: 'protocol',
  1007: 'protocol',
  1008: 'protocol',
  1009: 'protocol',
  1011: 'server_error',
  1012: 'going_away',
  4001: 'auth_expired',
  4029: 'rate_limited'
}

/** Reads `exp` from a JWT without verifying it (the server does that). */
export function expiryOf(token: string): number | undefined {
  try {
    const part = token.split('.')[1] as string
    const exp = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))).exp
    return typeof exp === 'number' ? exp : undefined
  } catch {
    return undefined
  }
}
