import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import realtime, { agentEvents, defineEvents, type RealtimeConnection, Type } from '../../src/index.js'

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
}

/** How long a run waits for the person's answer before it goes on as if they rejected. */
const HITL_TIMEOUT_MS = 30_000
/** How long a run waits for the client that started it to subscribe to the run's room. */
const SUBSCRIBE_WAIT_MS = 10_000

const events = defineEvents({ ...agentEvents })

const RunStart = Type.Object({ prompt: Type.Optional(Type.String({ maxLength: 500 })) })

const tokenQuery = {
  type: 'object',
  properties: { user: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$', default: 'demo' } },
  additionalProperties: false
} as const

/**
 * The demo app: `run:start` starts a simulated AI-agent run that streams its thoughts, tool calls and
 * status into the room `workflow:<runId>`, asks the person a question half-way and then reports its result.
 */
export async function buildApp(options: AppOptions = {}): Promise<FastifyInstance> {
  const secret = options.secret ?? process.env.JWT_SECRET ?? randomBytes(48).toString('hex')
  const stepMs = options.stepMs ?? 400
  const redisUrl = options.redisUrl ?? (process.env.REDIS_URL || undefined)
  const app = Fastify({ logger: options.logger ?? false })

  await app.register(realtime, {
    events,
    jwt: { secret },
    // On Redis, a run started through one instance reaches its watchers on every instance. Imported only when
    // used, so the in-memory demo never loads ioredis.
    adapter:
      redisUrl === undefined
        ? undefined
        : (await import('../../src/adapters/redis.js')).redisAdapter({ url: redisUrl, keyPrefix: 'agent-stream:' }),
    // A real app checks here that the user owns the run (e.g. a lookup of the workflow's owner).
    // The demo lets any signed-in user watch any run.
    authorize: ({ user, room }) => room === `user:${user.sub}` || room.startsWith('workflow:')
  })

  // Development only: hands out a token for any user name. A real app signs tokens after a login.
  app.get<{ Querystring: { user: string } }>('/dev/token', { schema: { querystring: tokenQuery } }, async (request) => {
    const { user } = request.query
    return { token: app.jwt.sign({ sub: user, name: user }, { expiresIn: '1h' }), user }
  })

  // Runs still going when the app closes stop at their next step.
  const shutdown = new AbortController()
  app.addHook('onClose', async () => shutdown.abort())

  app.realtime.handle('run:start', RunStart, ({ data, connection, log }) => {
    const runId = `run-${randomUUID().slice(0, 8)}`
    const room = `workflow:${runId}`
    const prompt = data.prompt ?? 'What changed in Fastify 5?'
    simulateRun({ app, runId, room, prompt, stepMs, starter: connection, signal: shutdown.signal }).catch((err: unknown) => {
      if (!shutdown.signal.aborted) log.error({ err, runId }, 'simulated run failed')
    })
    return { runId, room }
  })

  return app
}

interface Run {
  readonly app: FastifyInstance
  readonly runId: string
  readonly room: string
  readonly prompt: string
  readonly stepMs: number
  /** The connection that sent `run:start`: the run waits until it has subscribed. */
  readonly starter: RealtimeConnection
  readonly signal: AbortSignal
}

/** Resolves once `conn` holds `room`, or after `ms` (the run then goes on; a late subscriber misses the start). */
async function waitForSubscription(conn: RealtimeConnection, room: string, ms: number, signal: AbortSignal): Promise<void> {
  const until = Date.now() + ms
  while (!conn.rooms.has(room) && Date.now() < until) await sleep(25, undefined, { signal })
}

async function simulateRun({ app, runId, room, prompt, stepMs, starter, signal }: Run): Promise<void> {
  const rt = app.realtime
  const step = () => sleep(stepMs, undefined, { signal })

  await waitForSubscription(starter, room, SUBSCRIBE_WAIT_MS, signal)
  await rt.emit(room, { type: 'task_update', data: { taskId: runId, runId, status: 'queued', progress: 0, message: 'Queued' } })
  await step()
  await rt.emit(room, { type: 'task_update', data: { taskId: runId, runId, status: 'running', progress: 5, message: 'Planning' } })
  await rt.emit(room, { type: 'node_status', data: { runId, nodeId: 'plan', name: 'Plan', status: 'running' } })
  await rt.emit(room, { type: 'agent:thought', data: { runId, step: 0, content: `Reading the prompt: "${prompt}"` } })
  await step()
  await rt.emit(room, { type: 'agent:thought', data: { runId, step: 1, content: 'Plan: search the web, then write a short summary.' } })
  await rt.emit(room, { type: 'node_status', data: { runId, nodeId: 'plan', name: 'Plan', status: 'completed', progress: 100 } })
  await rt.emit(room, { type: 'task_update', data: { taskId: runId, runId, status: 'running', progress: 25, message: 'Searching' } })
  await step()

  const callId = `${runId}-call-1`
  const args = { query: prompt, limit: 3 }
  await rt.emit(room, { type: 'node_status', data: { runId, nodeId: 'search', name: 'Search', status: 'running' } })
  await rt.emit(room, { type: 'agent:tool_call', data: { runId, callId, tool: 'web_search', status: 'pending', args } })
  await step()
  const started = Date.now()
  await rt.emit(room, { type: 'agent:tool_call', data: { runId, callId, tool: 'web_search', status: 'running', args } })
  await step()
  const output = {
    results: [
      { title: 'Fastify v5 release notes', url: 'https://fastify.dev/docs/latest/Guides/Migration-Guide-V5/' },
      { title: 'Fastify on GitHub', url: 'https://github.com/fastify/fastify' },
      { title: 'Fastify plugins', url: 'https://fastify.dev/ecosystem/' }
    ]
  }
  await rt.emit(room, {
    type: 'agent:tool_call',
    data: { runId, callId, tool: 'web_search', status: 'succeeded', args, output, durationMs: Date.now() - started }
  })
  await rt.emit(room, { type: 'node_status', data: { runId, nodeId: 'search', name: 'Search', status: 'completed', progress: 100 } })
  await rt.emit(room, { type: 'task_update', data: { taskId: runId, runId, status: 'running', progress: 60, message: 'Writing' } })
  await step()

  const summary = `Found ${output.results.length} sources on "${prompt}"; the migration guide lists the breaking changes.`
  await rt.emit(room, { type: 'node_status', data: { runId, nodeId: 'answer', name: 'Answer', status: 'running' } })
  await rt.emit(room, { type: 'agent:thought', data: { runId, step: 2, content: 'Drafted a summary; asking before publishing it.' } })
  await rt.emit(room, {
    type: 'task_update',
    data: { taskId: runId, runId, status: 'waiting', progress: 80, message: 'Waiting for approval' }
  })

  const approved = await askToPublish(app, room, runId)
  if (signal.aborted) return

  await rt.emit(room, {
    type: 'agent:result',
    data: { runId, output: { summary, sources: output.results, published: approved }, summary: approved ? summary : 'Not published.' }
  })
  await rt.emit(room, { type: 'node_status', data: { runId, nodeId: 'answer', name: 'Answer', status: 'completed', progress: 100 } })
  await rt.emit(room, { type: 'task_update', data: { taskId: runId, runId, status: 'succeeded', progress: 100, message: 'Done' } })
}

/** The human-in-the-loop step: true when someone answered `approve`. No answer in time counts as a rejection. */
async function askToPublish(app: FastifyInstance, room: string, runId: string): Promise<boolean> {
  const requestId = `${runId}-hitl-1`
  try {
    const reply = await app.realtime.request<{ optionId?: unknown }>(
      room,
      {
        type: 'hitl_request',
        data: {
          requestId,
          runId,
          question: 'Publish the summary?',
          options: [
            { id: 'approve', label: 'Approve' },
            { id: 'reject', label: 'Reject' }
          ],
          timeoutMs: HITL_TIMEOUT_MS
        }
      },
      { timeout: HITL_TIMEOUT_MS }
    )
    return reply?.optionId === 'approve'
  } catch (err) {
    // Timeout, nobody subscribed, the client answered with an error, or every asked connection closed.
    app.log.info({ runId, reason: (err as Error).message }, 'approval not received; treating it as rejected')
    await app.realtime.emit(room, {
      type: 'error_notification',
      data: { severity: 'warning', message: 'No approval received; the summary was not published.', code: 'hitl_unanswered', runId }
    })
    return false
  }
}
