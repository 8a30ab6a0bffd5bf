// A Server-Sent Events client shaped like the `ws` clients of the load process: `message` for each event's data,
// `close` when the stream ends, `send()` as a POST to the stream's session whose answer comes back as a `message`.
import { EventEmitter } from 'node:events'
import { Agent, type IncomingMessage, request } from 'node:http'

const agent = new Agent({ keepAlive: true, maxSockets: Number.POSITIVE_INFINITY })
const READY_ID = Buffer.from('"connectionId":"')

export class SseWire extends EventEmitter {
  private session: string | undefined
  private response: IncomingMessage | undefined
  private rest: Buffer = Buffer.alloc(0)

  constructor(
    private readonly base: string,
    private readonly token: string
  ) {
    super()
    const req = request(`${base}/sse`, { agent, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
      this.response = res
      if (res.statusCode !== 200) {
        this.emit('close', res.statusCode)
        res.resume()
        return
      }
      res.on('data', (chunk: Buffer) => this.read(chunk))
      res.on('close', () => this.emit('close', 1006))
    })
    req.on('error', (err) => this.emit('error', err))
    req.end()
  }

  /** Each `data: <json>\n\n` event becomes one message, as one WebSocket frame would. */
  private read(chunk: Buffer): void {
    let buf = this.rest.length === 0 ? chunk : Buffer.concat([this.rest, chunk])
    for (;;) {
      const end = buf.indexOf('\n\n')
      if (end === -1) break
      const block = buf.subarray(0, end)
      buf = buf.subarray(end + 2)
      const at = block.lastIndexOf('data: ')
      if (at === -1) continue
      const data = block.subarray(at + 6)
      if (this.session === undefined) {
        const from = data.indexOf(READY_ID)
        if (from !== -1) this.session = data.toString('latin1', from + READY_ID.length, data.indexOf(0x22, from + READY_ID.length))
      }
      this.emit('message', data)
    }
    this.rest = buf
  }

  send(text: string): void {
    const req = request(
      `${this.base}/sse/${this.session}`,
      { method: 'POST', agent, headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' } },
      (res) => {
        const parts: Buffer[] = []
        res.on('data', (part: Buffer) => parts.push(part))
        res.on('end', () => {
          if (parts.length > 0) this.emit('message', Buffer.concat(parts))
        })
      }
    )
    req.on('error', (err) => this.emit('error', err))
    req.end(text)
  }

  close(): void {
    this.response?.destroy()
  }
}
