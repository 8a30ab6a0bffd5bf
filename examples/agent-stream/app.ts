import { randomBytes, randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import realtime, { agentEvents, defineEvents, Type } from '../../src/index.js'
import { registerDashboard } from './dashboard.js'
import { RunLog, simulateRun } from './run.js'

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

const events = defineEvents({ ...agentEvents })

const RunStart = Type.Object({
  prompt: Type.Optional(Type.String({ maxLength: 500 })),
  /** The first web search fails and is retried. */
  flaky: Type.Optional(Type.Boolean())
})

const userName = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const
const tokenQuery = {
  type: 'object',
  properties: { user: { ...userName, default: 'demo' } },
  additionalProperties: false
} as const
const runParams = {
  type: 'object',
  properties: { runId: { type: 'string', pattern: '^run-[0-9a-f]{8}$' } },
  required: ['runId']
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
 * The demo app: `run:start` starts a simulated AI-agent run that streams its thoughts, tool calls and
 * status into the room `workflow:<runId>`, asks the person a question half-way and then reports its result.
 * The dashboard at `/` shows it; the people watching a run see each other (presence).
 */
export async function buildApp(options: AppOptions = {}): Promise<FastifyInstance> {
  const secret = options.secret ?? process.env.JWT_SECRET ?? randomBytes(48).toString('hex')
  const stepMs = options.stepMs ?? 400
  const redisUrl = options.redisUrl ?? (process.env.REDIS_URL || undefined)
  const app = Fastify({ logger: options.logger ?? false })
  const log = new RunLog()

  await app.register(realtime, {
    events,
    jwt: { secret },
    // On Redis, a run started through one instance reaches its watchers on every instance. Imported only when
    // used, so the in-memory demo never loads ioredis.
    adapter:
      redisUrl === undefined
        ? undefined
        : (await import('../../src/adapters/redis.js')).redisAdapter({ url: redisUrl, keyPrefix: 'agent-stream:' }),
    ...(options.origins === undefined ? {} : { cors: { origin: [...(process.env.CORS_ORIGINS ?? '').split(','), ...options.origins] } }),
    // A real app checks here that the user owns the run (e.g. a lookup of the workflow's owner).
    // The demo lets any signed-in user watch any run.
    authorize: ({ user, room }) => room === `user:${user.sub}` || room.startsWith('workflow:'),
    presence: (room) => room.startsWith('workflow:'),
    // Prometheus metrics at GET /metrics (prom-client is installed with the repository's dev dependencies).
    metrics: true,
    presenceInfo: ({ user }) => ({ name: String(user.name ?? user.sub) }),
    // A page that opens a run already going redraws it from what the run emitted so far (known to the instance
    // that runs it: on Redis, a page on another instance follows the run from the moment it opens).
    snapshot: async ({ room }) => (room.startsWith('workflow:') ? { known: log.has(room), events: await log.events(room) } : undefined)
  })

  // Development only: hands out a token for any user name. A real app signs tokens after a login.
  app.get<{ Querystring: { user: string } }>('/dev/token', { schema: { querystring: tokenQuery } }, async (request) => {
    const { user } = request.query
    return { token: app.jwt.sign({ sub: user, name: user }, { expiresIn: '1h' }), user }
  })

  // Development only: what a run emitted so far, as the server saw it (`seq`, `type`, `data`).
  app.get<{ Params: { runId: string } }>('/dev/runs/:runId', { schema: { params: runParams } }, async (request, reply) => {
    const room = `workflow:${request.params.runId}`
    if (!log.has(room)) return reply.code(404).send({ message: 'no such run (runs are kept in memory)' })
    return { runId: request.params.runId, events: await log.events(room) }
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

  await registerDashboard(app)

  // Runs still going when the app closes stop at their next step.
  const shutdown = new AbortController()
  app.addHook('onClose', async () => shutdown.abort())

  app.realtime.handle('run:start', RunStart, ({ data, connection, log: logger }) => {
    const runId = `run-${randomUUID().slice(0, 8)}`
    const room = `workflow:${runId}`
    const prompt = data.prompt ?? 'What changed in Fastify 5?'
    log.start(room)
    simulateRun({ app, log, runId, room, prompt, flaky: data.flaky === true, stepMs, starter: connection, signal: shutdown.signal }).catch(
      (err: unknown) => {
        if (!shutdown.signal.aborted) logger.error({ err, runId }, 'simulated run failed')
      }
    )
    return { runId, room }
  })

  return app
}
