import type { Duplex } from 'node:stream'
import { constants, deflateRawSync } from 'node:zlib'
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket } from 'ws'
import * as ws from 'ws'
import type { DeflateSettings } from '../options.js'
import type { Encoder, OutboundMessage, Transport, TransportListener } from './transport.js'

// The WebSocket binding. This file is the only one that reaches into ws or Node internals; each use is feature-checked
// and falls back to ws's public `send()`, so a ws release that changes them costs speed, never delivery:
// - `Sender.frame` (ws's framing, absent from its type definitions) builds a frame once for every recipient;
// - `_socket` (the TCP stream under the WebSocket) takes those frames as they are;
// - `_extensions` tells the compression window the client accepts pre-deflated frames in;
// - `_socket._httpMessage` (Node's hijacked HTTP response) is let go once the upgrade is done.

interface FrameOptions {
  readonly fin: boolean
  readonly opcode: number
  readonly mask: boolean
  readonly readOnly: boolean
  readonly rsv1: boolean
}
type FrameFn = (data: Buffer, options: FrameOptions) => Buffer[]

/** ws's own framing, when the given ws module still has it. */
export function framingOf(module: unknown): FrameFn | undefined {
  const sender = (module as { Sender?: { frame?: unknown } }).Sender
  return typeof sender?.frame === 'function' ? (sender.frame.bind(sender) as FrameFn) : undefined
}

const frameFn = framingOf(ws)

/** `deflate`, `batch` as resolved: what the binding needs of the options. */
export interface WsSettings {
  readonly deflate: DeflateSettings | undefined
  readonly batch: boolean
}

/**
 * What the binding reaches into, found once per connection. `wire` undefined means every message goes through ws's
 * public `send()` (framed per connection: slower for fan-out, same bytes for the client).
 */
export interface WsReach {
  /** The stream under the WebSocket, to write pre-built frames to. */
  readonly wire: Duplex | undefined
  /** ws's framing, to build those frames. */
  readonly frame: FrameFn | undefined
  /** The compression window the client takes our pre-deflated frames in; 0 sends them plain. */
  readonly window: number
}

const TEXT = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false } as const
const DEFLATED = { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: true } as const
/** A sync flush ends the compressed data with an empty stored block; permessage-deflate leaves those 4 bytes out. */
const FLUSH_TAIL = 4
/** RFC 6455 allows at most 123 bytes of close reason. */
const MAX_REASON_BYTES = 123
const ARRAY_OPEN = Buffer.from('[')
const ARRAY_COMMA = Buffer.from(',')
const ARRAY_CLOSE = Buffer.from(']')

/** A whole server→client text frame (header and payload in one buffer), framed by ws's own Sender. */
export function textFrame(payload: Buffer, deflated = false, frame: FrameFn = frameFn as FrameFn): Buffer {
  const [header, data] = frame(payload, deflated ? DEFLATED : TEXT)
  return Buffer.concat([header as Buffer, data as Buffer])
}

/** The payload compressed for permessage-deflate with a `windowBits` window (no context carried between messages). */
export function deflatePayload(payload: Buffer, windowBits: number, level: number): Buffer {
  const out = deflateRawSync(payload, { windowBits, level, finishFlush: constants.Z_SYNC_FLUSH })
  return out.subarray(0, out.length - FLUSH_TAIL)
}

/**
 * The compression window a connection accepts our messages in, or 0 to send them plain: deflate is off, the client
 * did not offer permessage-deflate, or it asked for a window below the 512 bytes raw deflate can keep to. Each
 * compressed message is self-contained, so it is valid whether or not the client keeps its context.
 */
export function deflateWindow(socket: WebSocket, settings: DeflateSettings | undefined): number {
  if (settings === undefined) return 0
  const ext = (socket as unknown as { _extensions?: Record<string, { params?: Record<string, unknown> }> })._extensions
  const params = ext?.['permessage-deflate']?.params
  if (params === undefined) return 0
  const bits = typeof params.server_max_window_bits === 'number' ? params.server_max_window_bits : 15
  return bits >= 9 ? bits : 0
}

/** Finds what this ws and this socket let the binding reach. */
export function reachInto(socket: WebSocket, deflate: DeflateSettings | undefined): WsReach {
  const wire = (socket as unknown as { _socket?: Partial<Duplex> })._socket
  if (frameFn === undefined || typeof wire?.write !== 'function') return { wire: undefined, frame: undefined, window: 0 }
  return { wire: wire as Duplex, frame: frameFn, window: deflateWindow(socket, deflate) }
}

const plainEncoder: Encoder<Buffer> = (message) => textFrame(message.payload)
/** Deflating encoders, one per settings and window: the same function for every connection that shares them. */
const deflatingEncoders = new WeakMap<DeflateSettings, Map<number, Encoder<Buffer>>>()

function frameEncoder(deflate: DeflateSettings | undefined, window: number): Encoder<Buffer> {
  if (deflate === undefined || window === 0) return plainEncoder
  let byWindow = deflatingEncoders.get(deflate)
  if (byWindow === undefined) {
    byWindow = new Map()
    deflatingEncoders.set(deflate, byWindow)
  }
  let encoder = byWindow.get(window)
  if (encoder === undefined) {
    encoder = (message) =>
      message.payload.length < deflate.threshold
        ? message.encoded(plainEncoder)
        : textFrame(deflatePayload(message.payload, window, deflate.level), true)
    byWindow.set(window, encoder)
  }
  return encoder
}

/**
 * The transport of one WebSocket. Also lets go of the upgrade's request and reply: @fastify/websocket's 'error'
 * listener on the socket, and the hijacked HTTP response left on the TCP socket, would otherwise keep both alive (a
 * few KB) for as long as the connection lasts. Socket errors are logged through the connection's logger instead.
 */
export function wsTransport(
  socket: WebSocket,
  log: FastifyBaseLogger,
  settings: WsSettings,
  reach: WsReach = reachInto(socket, settings.deflate)
): Transport {
  socket.removeAllListeners('error')
  socket.on('error', (err) => log.info({ err }, 'realtime socket error'))
  const { wire, frame } = reach
  // Node's own 'close' listener on the TCP socket reads this field and copes with null.
  if (wire !== undefined) (wire as unknown as { _httpMessage: unknown })._httpMessage = null
  const encoder = frameEncoder(settings.deflate, reach.window)
  const { deflate, batch } = settings
  const isOpen = () => socket.readyState === socket.OPEN

  /** The public path: ws frames (and, when the client agreed to it, deflates) each message itself. */
  const send = (payload: Buffer) =>
    socket.send(payload, { binary: false, compress: deflate !== undefined && payload.length >= deflate.threshold })

  return {
    get open() {
      return isOpen()
    },
    get bufferedAmount() {
      return socket.bufferedAmount
    },
    size: (message) => (wire === undefined ? message.payload.length : message.encoded(encoder).length),
    write(message) {
      if (!isOpen()) return
      if (wire === undefined) send(message.payload)
      else wire.write(message.encoded(encoder))
    },
    writeMany(messages) {
      if (!isOpen()) return
      if (messages.length === 1) {
        this.write(messages[0] as OutboundMessage)
        return
      }
      if (batch) {
        const parts: Buffer[] = [ARRAY_OPEN]
        for (const message of messages) parts.push(message.payload, ARRAY_COMMA)
        parts[parts.length - 1] = ARRAY_CLOSE
        const array = Buffer.concat(parts)
        if (wire === undefined) send(array)
        else wire.write(textFrame(array, false, frame))
        return
      }
      if (wire === undefined) for (const message of messages) send(message.payload)
      else wire.write(Buffer.concat(messages.map((message) => message.encoded(encoder))))
    },
    close(code, reason) {
      let fitted = reason
      while (Buffer.byteLength(fitted) > MAX_REASON_BYTES) fitted = fitted.slice(0, -1)
      try {
        socket.close(code, fitted)
      } catch (err) {
        // A code a close frame may not carry (e.g. 1005): the connection still ends.
        log.warn({ err, code }, 'realtime close code refused; connection terminated')
        socket.terminate()
      }
    },
    terminate: () => socket.terminate(),
    ping() {
      if (isOpen()) socket.ping()
    },
    listen(listener: TransportListener) {
      socket.on('message', (data, isBinary) => listener.message(data as Buffer, isBinary))
      socket.on('pong', () => listener.alive())
      socket.on('close', (code, reason) => listener.closed(code, reason.toString()))
    }
  }
}
