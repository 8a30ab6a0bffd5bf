// Contender 3, the limit: raw `ws`, each event serialized and framed once (with ws's own `Sender.frame`), and that one
// buffer written to every subscriber's TCP socket.
import { envelope } from '../common.js'
import { host } from '../host.js'
import { rawServer, textFrame } from './plain.js'

host(async () => {
  const { port, members } = await rawServer()
  let seq = 0
  return {
    port,
    emit(data) {
      const frame = textFrame(JSON.stringify(envelope(++seq, data)))
      for (const member of members.values()) member.socket.write(frame)
    },
    subscribers: () => members.size
  }
})
