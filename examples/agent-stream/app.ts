import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { aguiEvents, aguiRoom } from '../../src/ag-ui/index.js'
import realtime, { memoryAdapter } from '../../src/index.js'
import { servePage } from '../shared/page.js'
import { simulateRun } from './run.js'

export interface AppOptions {
  /**
   * JWT secret. Default: `JWT_SECRET`, else a random secret made at start (tokens then die with the process, and
   * each instance has its own: give several instances the same `JWT_SECRET`).
   */
  secret?: string
  /**
   * Redis shared by several instances, e.g. `redis://127.0.0.1:6379`. Default: `REDIS_URL`; without it, the
   * in-memory adapter (one instance, no other service).
   */
  redisUrl?: string
  logger?: FastifyServerOptions['logger']
  /** Pause between two steps of a simulated run, in ms. Default 400. */
  stepMs?: number
  /**
   * Origins allowed to open the WebSocket besides those in `CORS_ORIGINS`: the dashboard's own, e.g.
   * `http://localhost:3000`. Default: none, and then the plugin's default origins apply.
   */
  origins?: readonly string[]
}

/** The AG-UI route: `POST` starts a run, `GET ?threadId&runId` re-attaches to one. */
export const AGENT_PATH = '/agent'

/** A run is replayed from its room's history: keep whole runs, for half an hour. */
const RUN_HISTORY = { size: 10_000, ttl: 30 * 60_000 }

const userName = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const
const tokenQuery = {
  type: 'object',
  properties: { user: { ...userName, default: 'demo' } },
  additionalProperties: false
} as const
const threadParams = {
  type: 'object',
  properties: { threadId: { type: 'string', pattern: '^run-[0-9a-f]{8}$' } },
  required: ['threadId']
} as const
const dropBody = {
  type: 'object',
  properties: { connectionId: { type: 'string', minLength: 1, maxLength: 64 } },
  required: ['connectionId'],
  additionalProperties: false
} as const

/** The close code of `POST /dev/drop`: in 4000–4499, "reconnect and resume". */
const DROP_CLOSE_CODE = 4000

/**
 * The demo app: `POST /agent` (AG-UI) runs a simulated AI agent that streams its thoughts, a tool call and its plan
 * into the thread's room `agui:<threadId>`, asks the person watching for an approval half-way, then finishes with
 * its result. The dashboard at `/` shows it; the people watching a thread see each other (presence).
 */
export async function buildApp(options: AppOptions = {}): Promise<FastifyInstance> {
  const secret = options.secret ?? process.env.JWT_SECRET ?? randomBytes(48).toString('hex')
  const stepMs = options.stepMs ?? 400
  const redisUrl = options.redisUrl ?? (process.env.REDIS_URL || undefined)
  const app = Fastify({ logger: options.logger ?? false })

  // On Redis, a run started through one instance reaches its watchers on every instance. Imported only when used, so
  // the in-memory demo never loads ioredis. Held here for the development route that reads a thread's history.
  const adapter =
    redisUrl === undefined
      ? memoryAdapter()
      : (await import('../../src/adapters/redis.js')).redisAdapter({ url: redisUrl, keyPrefix: 'agent-stream:' })

  await app.register(realtime, {
    events: aguiEvents,
    jwt: { secret },
    adapter,
    history: { rooms: (room) => (/^agui(-state)?:/.test(room) ? RUN_HISTORY : undefined) },
    ...(options.origins === undefined ? {} : { cors: { origin: [...(process.env.CORS_ORIGINS ?? '').split(','), ...options.origins] } }),
    // A real app checks here that the user may see the thread (e.g. a lookup of its owner). The demo lets any
    // signed-in user watch, answer and cancel any run.
    authorize: ({ user, room }) => room === `user:${user.sub}` || /^agui(-state)?:/.test(room),
    // The people watching a thread see each other; the runs' log rooms (`agui:<threadId>:<runId>`) have no presence.
    presence: (room) => /^agui:[^:]+$/.test(room),
    presenceInfo: ({ user }) => ({ name: String(user.name ?? user.sub) }),
    // Prometheus metrics at GET /metrics (prom-client is installed with the repository's dev dependencies).
    metrics: true
  })

  // The AG-UI route is for signed-in users: the same tokens as the WebSocket's, as `Authorization: Bearer`.
  app.addHook('preValidation', async (request) => {
    if (request.routeOptions.url === AGENT_PATH) await request.jwtVerify()
  })

  // Runs still going when the app closes stop at their next step.
  const shutdown = new AbortController()
  app.addHook('onClose', async () => shutdown.abort())

  app.realtime.agui.route(AGENT_PATH, (input, run, signal) => {
    // Stops on a cancel of the run or on shutdown, whichever comes first (AbortSignal.any needs Node 20.3).
    const stop = new AbortController()
    for (const cause of [signal, shutdown.signal]) {
      if (cause.aborted) stop.abort()
      else cause.addEventListener('abort', () => stop.abort(), { once: true })
    }
    return simulateRun({ input, run, stepMs, signal: stop.signal, log: app.log })
  })

  // Development only: hands out a token for any user name. A real app signs tokens after a login.
  app.get<{ Querystring: { user: string } }>('/dev/token', { schema: { querystring: tokenQuery } }, async (request) => {
    const { user } = request.query
    return { token: app.jwt.sign({ sub: user, name: user }, { expiresIn: '1h' }), user }
  })

  // Development only: what the thread's room holds, in order (`seq`, `type`), read from the adapter's history: the
  // events a page subscribed to `agui:<threadId>` receives, on any instance.
  app.get<{ Params: { threadId: string } }>('/dev/threads/:threadId', { schema: { params: threadParams } }, async (request, reply) => {
    const room = aguiRoom(request.params.threadId)
    const { position } = await adapter.history(room, {}, RUN_HISTORY)
    const read = position.seq === 0 ? undefined : await adapter.history(room, { since: 0, epoch: position.epoch }, RUN_HISTORY)
    if (read?.events === undefined) return reply.code(404).send({ message: 'no such thread (or its history has expired)' })
    const events = read.events.map((pub) => {
      const { seq, type } = JSON.parse(pub.frame.toString()) as { seq: number; type: string }
      return { seq, type }
    })
    return { threadId: request.params.threadId, events }
  })

  // Development only: closes one of the caller's own connections with a code that says "reconnect and resume",
  // to try recovery from the dashboard. The token (Authorization: Bearer) must belong to the connection's user.
  app.post<{ Body: { connectionId: string } }>('/dev/drop', { schema: { body: dropBody } }, async (request, reply) => {
    const user = await request.jwtVerify<{ sub: string }>()
    const conn = app.realtime.connection(request.body.connectionId)
    if (conn === undefined) return reply.code(404).send({ message: 'no such connection on this instance' })
    if (conn.userId !== user.sub) return reply.code(403).send({ message: 'only your own connections can be dropped' })
    conn.close(DROP_CLOSE_CODE, 'dropped from the dashboard')
    return reply.code(204).send()
  })

  await servePage(app, new URL('./public/', import.meta.url), ['index.html', 'dashboard.css', 'dashboard.js'], 'example')
  return app
}
