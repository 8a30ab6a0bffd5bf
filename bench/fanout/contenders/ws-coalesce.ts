// Contender 4, the target: contender 3's pre-framed buffers, plus write coalescing per connection. Frames queue
// per connection; one timer flushes every queue WINDOW_MS after the first frame waits, or a queue at once when it
// reaches CAP bytes. A flush is one `socket.write` of that connection's frames, concatenated; each event is still
// its own WebSocket frame.
import { envelope } from '../common.js'
import { host } from '../host.js'
import { type Member, rawServer, textFrame } from './plain.js'

const WINDOW_MS = 2
const CAP = 64 * 1024

host(async () => {
  const { port, members } = await rawServer()
  const waiting: Member[] = []
  let scheduled = false
  let seq = 0

  const flush = (m: Member) => {
    const out = m.frames.length === 1 ? (m.frames[0] as Buffer) : Buffer.concat(m.frames, m.bytes)
    m.frames = []
    m.bytes = 0
    if (!m.socket.destroyed) m.socket.write(out)
  }
  const flushAll = () => {
    scheduled = false
    for (const m of waiting) {
      m.queued = false
      if (m.bytes > 0) flush(m)
    }
    waiting.length = 0
  }

  return {
    port,
    emit(data) {
      const frame = textFrame(JSON.stringify(envelope(++seq, data)))
      for (const m of members.values()) {
        m.frames.push(frame)
        m.bytes += frame.length
        // A full queue goes at once; it may stay on the waiting list, where an empty queue is skipped.
        if (m.bytes >= CAP) flush(m)
        else if (!m.queued) {
          m.queued = true
          waiting.push(m)
          if (!scheduled) {
            scheduled = true
            setTimeout(flushAll, WINDOW_MS)
          }
        }
      }
    },
    subscribers: () => members.size
  }
})
