// What a session plugin declares on the request (as @fastify/session does): the README's session snippet reads it.
import type { AuthenticatedUser } from 'fastify-realtime'

declare module 'fastify' {
  interface FastifyRequest {
    session: { get(key: 'user'): AuthenticatedUser | undefined }
  }
}
