import { randomBytes } from 'node:crypto'
import { type Socket, connect as tcpConnect } from 'node:net'

/** A WebSocket handshake over raw TCP: resolves with the socket once the server answered 101, or with the status line. */
export function rawUpgrade(port: number, headers: Record<string, string>): Promise<{ socket: Socket; status: number; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1')
    let buffered = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      const end = buffered.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.off('data', onData)
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buffered.toString('latin1'))?.[1] ?? 0)
      resolve({ socket, status, rest: buffered.subarray(end + 4) })
    }
    socket.on('data', onData)
    socket.once('error', reject)
    const lines = [
      'GET /ws HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)
    ]
    socket.write(`${lines.join('\r\n')}\r\n\r\n`)
  })
}

/**
 * Reads what the server sends after the upgrade until it closes the TCP connection; returns the close code of its
 * close frame, or 'eof' when it closed without one.
 */
export function closeCodeOf(socket: Socket, first: Buffer, timeoutMs: number): Promise<number | 'eof' | 'timeout'> {
  return new Promise((resolve) => {
    let data = first
    const timer = setTimeout(() => {
      socket.destroy()
      resolve('timeout')
    }, timeoutMs)
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk])
    })
    socket.on('error', () => {})
    socket.once('close', () => {
      clearTimeout(timer)
      resolve(findCloseCode(data) ?? 'eof')
    })
  })
}

/** Walks unmasked server frames and returns the code of the first close frame. */
function findCloseCode(data: Buffer): number | undefined {
  let at = 0
  while (at + 2 <= data.length) {
    const opcode = (data[at] as number) & 0x0f
    let length = (data[at + 1] as number) & 0x7f
    let header = 2
    if (length === 126) {
      length = data.readUInt16BE(at + 2)
      header = 4
    } else if (length === 127) {
      length = Number(data.readBigUInt64BE(at + 2))
      header = 10
    }
    if (opcode === 0x8) return length >= 2 ? data.readUInt16BE(at + header) : 1005
    at += header + length
  }
  return undefined
}
