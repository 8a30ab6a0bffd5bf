// What the raw-ws and @fastify/websocket contenders share: token verification with fast-jwt (the library
// @fastify/jwt uses underneath), and the small protocol their clients speak: `{"type":"subscribe","room":…}`,
// answered with `{"type":"subscribed","room":…}`, then events.
import { createServer, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import { createVerifier } from 'fast-jwt'
import * as ws from 'ws'
import { type WebSocket, WebSocketServer } from 'ws'
import { ROOM, SECRET } from '../common.js'

const verify = createVerifier({ key: SECRET, algorithms: ['HS256'] })

// ws exports its frame builder, but @types/ws does not declare it.
const { Sender } = ws as unknown as {
  Sender: { frame(data: Buffer, options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[] }
}

/** One final, unmasked text frame (what a server sends) holding `text`, built by ws's own `Sender.frame`. */
export function textFrame(text: string): Buffer {
  return Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: false }))
}

/** The verified user of an upgrade request's `Authorization: Bearer …`; throws when there is none. */
export function verifyBearer(req: IncomingMessage): { sub: string } {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? ''
  const user = verify(token) as { sub?: unknown }
  if (typeof user.sub !== 'string') throw new Error('the token has no sub')
  return user as { sub: string }
}

/** Reads a client's messages: a subscribe to the room calls `join` and is answered. */
export function speakPlain(ws: WebSocket, join: () => void): void {
  ws.on('message', (raw) => {
    let msg: { type?: unknown; room?: unknown }
    try {
      msg = JSON.parse(String(raw))
    } catch {
      return
    }
    if (msg.type === 'subscribe' && msg.room === ROOM) {
      join()
      ws.send(JSON.stringify({ type: 'subscribed', room: ROOM }))
    }
  })
  ws.on('error', () => {})
}

/** A subscriber: its WebSocket, its TCP socket, and a queue for the contender that coalesces writes. */
export interface Member {
  readonly ws: WebSocket
  readonly socket: Socket
  frames: Buffer[]
  bytes: number
  queued: boolean
}

/**
 * A bare `ws` server behind node:http: the token is verified on `upgrade`, before the handshake (401 otherwise).
 * `members` holds the subscribers, with their TCP sockets for the contenders that write frames themselves.
 */
export async function rawServer(): Promise<{ port: number; members: Map<WebSocket, Member> }> {
  const members = new Map<WebSocket, Member>()
  const server = createServer((_req, res) => res.writeHead(404).end())
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 })
  server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
    try {
      verifyBearer(req)
    } catch {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      speakPlain(ws, () => members.set(ws, { ws, socket, frames: [], bytes: 0, queued: false }))
      ws.on('close', () => members.delete(ws))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { port: (server.address() as { port: number }).port, members }
}
