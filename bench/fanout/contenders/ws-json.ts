// Contender 2: raw `ws`, the envelope serialized once per event, `ws.send` per socket (ws frames it each time).
import { envelope } from '../common.js'
import { host } from '../host.js'
import { rawServer } from './plain.js'

host(async () => {
  const { port, members } = await rawServer()
  let seq = 0
  return {
    port,
    emit(data) {
      const text = JSON.stringify(envelope(++seq, data))
      for (const ws of members.keys()) ws.send(text)
    },
    subscribers: () => members.size
  }
})
