// Contender 5: what an app might write with @fastify/websocket alone: @fastify/jwt verifies the token in a
// preValidation hook, subscribers are kept in a Set, and each event is serialized again for every socket.
import fastifyJwt from '@fastify/jwt'
import fastifyWebsocket from '@fastify/websocket'
import Fastify from 'fastify'
import type { WebSocket } from 'ws'
import { envelope, PATH, SECRET } from '../common.js'
import { host } from '../host.js'
import { speakPlain } from './plain.js'

host(async () => {
  const app = Fastify({ logger: false })
  await app.register(fastifyJwt, { secret: SECRET })
  await app.register(fastifyWebsocket, { options: { maxPayload: 64 * 1024 } })
  const members = new Set<WebSocket>()
  app.get(PATH, { websocket: true, preValidation: async (req) => void (await req.jwtVerify()) }, (socket) => {
    speakPlain(socket, () => members.add(socket))
    socket.on('close', () => members.delete(socket))
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  let seq = 0
  return {
    port: (app.server.address() as { port: number }).port,
    emit(data) {
      const message = envelope(++seq, data)
      for (const ws of members) ws.send(JSON.stringify(message))
    },
    subscribers: () => members.size
  }
})
