import { randomBytes, randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import {
  FST_REALTIME_BAD_EVENT_ID,
  FST_REALTIME_CLOSING,
  FST_REALTIME_NO_SESSION,
  FST_REALTIME_NOT_YOUR_SESSION,
  FST_REALTIME_TICKETS_FULL
} from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import { ClientType } from '../protocol/constants.js'
import { type IdPosition, parseEventId, SSE_SUFFIX, TICKET_SUFFIX } from '../protocol/sse.js'
import type { RealtimeUser } from '../types.js'
import { createAuthenticate, kUser, type RequestWithUser, redactQueryParam } from './auth.js'
import { releaseSlot } from './caps.js'
import { route } from './client-messages.js'
import { Connection, type VerifyToken } from './connection.js'
import type { Hub } from './hub.js'
import { SseTransport } from './sse-transport.js'

// The routes of the SSE transport: `GET <path>/sse` opens a stream, `POST <path>/sse/<sessionId>` sends it a client
// message, `POST <path>/ticket` trades a bearer token for a ticket that `EventSource` (which cannot send headers) puts
// in `?ticket=`. The stream passes the very checks of the WebSocket upgrade (`createAuthenticate`) before any byte.

/** Tickets are told from tokens by this prefix (a JWT never starts with it). */
const TICKET_PREFIX = 'rtt.'
/** The ticket taken out of a `?ticket=` URL before Fastify logs the URL. */
const kTicket = Symbol('fastify-realtime.ticket')
type RawWithTicket = IncomingMessage & { [kTicket]?: string }

/** One open stream: its session and its binding. */
interface SseSession {
  readonly conn: Connection
  readonly transport: SseTransport
}

/** Single-use tickets of this instance, each for `ttl` ms. */
export class Tickets {
  private readonly held = new Map<string, { readonly user: RealtimeUser; readonly expires: number }>()

  constructor(
    private readonly ttl: number,
    private readonly max: number
  ) {}

  issue(user: RealtimeUser): string {
    if (this.held.size >= this.max) this.sweep()
    if (this.held.size >= this.max) throw new FST_REALTIME_TICKETS_FULL()
    const ticket = `${TICKET_PREFIX}${randomBytes(24).toString('base64url')}`
    this.held.set(ticket, { user, expires: Date.now() + this.ttl })
    return ticket
  }

  /** The ticket's user, once: a second redeem, or one past its time, gets nothing. */
  redeem(ticket: string): RealtimeUser | undefined {
    const held = this.held.get(ticket)
    this.held.delete(ticket)
    return held !== undefined && held.expires > Date.now() ? held.user : undefined
  }

  private sweep(): void {
    const now = Date.now()
    for (const [ticket, { expires }] of this.held) if (expires <= now) this.held.delete(ticket)
  }
}

/** The `ticket` of a stream's query string (`EventSource` cannot send headers), kept out of the logged URL. */
export const redactTicket = (ssePath: string) => redactQueryParam(ssePath, 'ticket', kTicket)

/** What the SSE routes need of the plugin. */
export interface SseContext {
  readonly opts: ResolvedOptions
  readonly hub: Hub
  readonly verify: VerifyToken
}

/** The open streams of this instance, by session id; `count()` feeds `stats().transports`. */
export interface SseRoutes {
  count(): number
}

/** Registers the three routes, in a context of their own (they read bodies as raw bytes, as a WebSocket frame). */
export async function registerSse(fastify: FastifyInstance, { opts, hub, verify }: SseContext): Promise<SseRoutes> {
  const settings = opts.sse as NonNullable<ResolvedOptions['sse']>
  const base = opts.path.replace(/\/$/, '')
  const sessions = new Map<string, SseSession>()
  const tickets = new Tickets(settings.ticketTtl, opts.limits.connections)

  // A ticket stands for its user once; anything else is a token.
  const verifyTicketOrToken: VerifyToken = async (token) => {
    if (!token.startsWith(TICKET_PREFIX)) return verify(token)
    const user = tickets.redeem(token)
    if (user === undefined) throw Object.assign(new Error('Unknown, used or expired ticket'), { label: 'ticket' })
    return user
  }
  const openGate = createAuthenticate(opts, verifyTicketOrToken, hub, hub.slots)
  // A POST to a stream, or a ticket, opens no connection: the caps are not theirs to check.
  const authenticate = createAuthenticate(opts, verify, hub)

  await fastify.register(async (scope) => {
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: opts.limits.maxPayload }, (_request, body, done) => done(null, body))

    scope.get(`${base}${SSE_SUFFIX}`, {
      // The one check of the WebSocket upgrade; a ticket reaches it as the bearer token it stands for.
      preValidation: async (request) => {
        const ticket = (request.raw as RawWithTicket)[kTicket]
        if (ticket !== undefined && request.headers.authorization === undefined) request.headers.authorization = `Bearer ${ticket}`
        await openGate(request)
        // The rooms the app names (`subscriptions`, remembered joins), as for the WebSocket route.
        await hub.memberships.atConnect(request)
      },
      onError: async (request) => releaseSlot(request),
      handler: (request, reply) => open(request, reply)
    })

    scope.post(`${base}${SSE_SUFFIX}/:sessionId`, { preValidation: authenticate }, async (request, reply) => {
      const { sessionId } = request.params as { sessionId: string }
      const session = sessions.get(sessionId)
      if (session === undefined || session.conn.closed) throw new FST_REALTIME_NO_SESSION(sessionId.slice(0, 64))
      const user = (request as RequestWithUser)[kUser] as RealtimeUser
      if (user.sub !== session.conn.userId) {
        session.conn.log.warn({ userId: user.sub }, 'realtime post to another user’s stream refused')
        throw new FST_REALTIME_NOT_YOUR_SESSION()
      }
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0)
      const { answer, abandon } = session.transport.post(body, () => session.conn.flush())
      reply.raw.on('close', () => {
        if (!reply.raw.writableFinished) abandon()
      })
      const { status, body: text } = await answer
      reply.code(status).header('cache-control', 'no-store')
      return text === undefined ? reply.send() : reply.type('application/json; charset=utf-8').send(text)
    })

    scope.post(`${base}${TICKET_SUFFIX}`, { preValidation: authenticate }, async (request, reply) => {
      const user = (request as RequestWithUser)[kUser] as RealtimeUser
      reply.header('cache-control', 'no-store')
      return { ticket: tickets.issue(user), expiresIn: settings.ticketTtl }
    })
  })

  function open(request: FastifyRequest, reply: FastifyReply): void {
    if (hub.closing) throw new FST_REALTIME_CLOSING()
    const resume = lastPositions(request, opts.limits.roomsPerConnection)
    const query = request.query as { room?: string | string[] }
    const asked = query.room === undefined ? [] : Array.isArray(query.room) ? query.room : [query.room]

    const user = (request as RequestWithUser)[kUser] as RealtimeUser
    const id = randomUUID()
    const log = request.log.child({ connectionId: id, userId: user.sub, transport: 'sse' })
    reply.hijack()
    const res = reply.raw
    res.writeHead(200, {
      ...(reply.getHeaders() as Record<string, string>),
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      'x-accel-buffering': 'no'
    })
    const transport = new SseTransport(res, log)
    transport.begin(settings.retry)
    const conn = new Connection(id, transport, user, log, hub, verify)
    sessions.set(id, { conn, transport })
    res.on('close', () => sessions.delete(id))
    // Resumed rooms first, from where the id says; rooms asked in the query that the id does not name, from now.
    hub.admit(conn, request, () => {
      const rooms = new Map<string, { since?: number; epoch?: string }>()
      for (const { room, seq, epoch } of resume) rooms.set(room, { since: seq, epoch })
      for (const room of asked) if (!rooms.has(room)) rooms.set(room, {})
      for (const [room, data] of rooms) route(conn, hub, { type: ClientType.Subscribe, room, data })
    })
  }

  return {
    count: () => {
      let n = 0
      for (const id of sessions.keys()) if (hub.connections.has(id)) n++
      return n
    }
  }
}

/** The positions a reconnecting stream resumes from: the `Last-Event-ID` header, else `?lastEventId=`. */
function lastPositions(request: FastifyRequest, maxRooms: number): IdPosition[] {
  const header = request.headers['last-event-id']
  const query = (request.query as { lastEventId?: unknown }).lastEventId
  const given = typeof header === 'string' ? header : typeof query === 'string' ? query : ''
  try {
    return parseEventId(given, maxRooms)
  } catch (err) {
    throw new FST_REALTIME_BAD_EVENT_ID((err as Error).message)
  }
}
