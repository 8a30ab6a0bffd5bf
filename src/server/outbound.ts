import { constants, deflateRawSync } from 'node:zlib'
import type { WebSocket } from 'ws'
import * as ws from 'ws'

interface FrameOptions {
  readonly fin: boolean
  readonly opcode: number
  readonly mask: boolean
  readonly readOnly: boolean
  readonly rsv1: boolean
}
/** ws's framing (its Sender), which its type definitions leave out. */
const { Sender } = ws as unknown as { Sender: { frame(data: Buffer, options: FrameOptions): Buffer[] } }

/** `deflate` as resolved: messages of `threshold` bytes or more are compressed at `level`. */
export interface DeflateSettings {
  readonly threshold: number
  readonly level: number
}

const TEXT = { fin: true, opcode: 1, mask: false, readOnly: true, rsv1: false } as const
const DEFLATED = { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: true } as const
/** A sync flush ends the compressed data with an empty stored block; permessage-deflate leaves those 4 bytes out. */
const FLUSH_TAIL = 4

/** A whole server→client text frame (header and payload in one buffer), framed by ws's own Sender. */
export function textFrame(payload: Buffer, deflated = false): Buffer {
  const [header, data] = Sender.frame(payload, deflated ? DEFLATED : TEXT)
  return Buffer.concat([header as Buffer, data as Buffer])
}

/** The payload compressed for permessage-deflate with a `windowBits` window (no context carried between messages). */
export function deflatePayload(payload: Buffer, windowBits: number, level: number): Buffer {
  const out = deflateRawSync(payload, { windowBits, level, finishFlush: constants.Z_SYNC_FLUSH })
  return out.subarray(0, out.length - FLUSH_TAIL)
}

/**
 * The compression window a connection accepts our messages in, or 0 to send it plain text: deflate is off, the
 * client did not offer permessage-deflate, or it asked for a window below the 512 bytes raw deflate can keep to.
 * Each compressed message is self-contained, so it is valid whether or not the client keeps its context.
 */
export function deflateWindow(socket: WebSocket, settings: DeflateSettings | undefined): number {
  if (settings === undefined) return 0
  const ext = (socket as unknown as { _extensions?: Record<string, { params?: Record<string, unknown> }> })._extensions
  const params = ext?.['permessage-deflate']?.params
  if (params === undefined) return 0
  const bits = typeof params.server_max_window_bits === 'number' ? params.server_max_window_bits : 15
  return bits >= 9 ? bits : 0
}

/**
 * One message as it goes to many connections: framed once, and compressed once per window size in use (in practice
 * one), whatever the number of recipients.
 */
export class OutboundMessage {
  private plain: Buffer | undefined
  private compressed: Buffer | undefined
  private compressedBits = 0

  constructor(
    readonly payload: Buffer,
    private readonly deflate: DeflateSettings | undefined
  ) {}

  /** The frame for a connection whose deflate window is `bits` (0: no compression). */
  frame(bits: number): Buffer {
    if (bits === 0 || this.payload.length < (this.deflate as DeflateSettings).threshold) {
      if (this.plain === undefined) this.plain = textFrame(this.payload)
      return this.plain
    }
    if (this.compressedBits !== bits) {
      this.compressed = textFrame(deflatePayload(this.payload, bits, (this.deflate as DeflateSettings).level), true)
      this.compressedBits = bits
    }
    return this.compressed as Buffer
  }
}
