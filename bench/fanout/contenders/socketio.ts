// Contender 6: Socket.IO 4 with the WebSocket transport only. The token arrives in the CONNECT packet's `auth`
// and is verified by a middleware; a `subscribe` event joins the room and is acknowledged; events go out with
// `io.to(room).emit`, which Socket.IO serializes once per broadcast.
import { createServer } from 'node:http'
import { createVerifier } from 'fast-jwt'
import { Server } from 'socket.io'
import { envelope, ROOM, SECRET } from '../common.js'
import { host } from '../host.js'

const verify = createVerifier({ key: SECRET, algorithms: ['HS256'] })

host(async () => {
  const server = createServer()
  const io = new Server(server, { transports: ['websocket'], serveClient: false, perMessageDeflate: false })
  io.use((socket, next) => {
    try {
      const user = verify(String(socket.handshake.auth.token)) as { sub?: unknown }
      if (typeof user.sub !== 'string') throw new Error('the token has no sub')
      socket.data.user = user
      next()
    } catch {
      next(new Error('unauthorized'))
    }
  })
  io.on('connection', (socket) => {
    socket.on('subscribe', (room: unknown, ack?: (answer: string) => void) => {
      if (room !== ROOM) return
      void socket.join(ROOM)
      ack?.('subscribed')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  let seq = 0
  return {
    port: (server.address() as { port: number }).port,
    emit(data) {
      io.to(ROOM).emit('event', envelope(++seq, data))
    },
    subscribers: () => io.sockets.adapter.rooms.get(ROOM)?.size ?? 0
  }
})
