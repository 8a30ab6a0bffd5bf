import { randomBytes } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import realtime, { agentEvents, memoryAdapter, RealtimeError, Type } from '../../src/index.js'
import { servePage } from '../shared/page.js'
import { eventsRoom, graphRoom, runPlan } from './planner.js'

export interface AppOptions {
  /** JWT secret. Default: `JWT_SECRET`, else a random secret made at start. */
  secret?: string
  logger?: FastifyServerOptions['logger']
  /** Pause between two steps of the simulated planner, in ms. Default 500. */
  stepMs?: number
  /** Origins allowed to connect besides the plugin's defaults: the page's own, e.g. `http://localhost:3000`. */
  origins?: readonly string[]
}

/** A graph's rooms keep its whole run: a page that arrives late replays the event log from the start. */
const GRAPH_HISTORY = { size: 2000, ttl: 30 * 60_000 }
const GRAPH_ROOM = /^(graph|tasks):g-[0-9a-f]{8}$/

const GraphId = Type.String({ pattern: '^g-[0-9a-f]{8}$' })
/** What the page sends to start a planner: the graph's id (made by the page, so it subscribes first), the goal, and how long the review may wait. */
const StartGraph = Type.Object(
  {
    graphId: GraphId,
    goal: Type.String({ minLength: 1, maxLength: 200 }),
    answerWithinS: Type.Integer({ minimum: 1, maximum: 600 })
  },
  { additionalProperties: false }
)

const userName = { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } as const
const tokenQuery = { type: 'object', properties: { user: { ...userName, default: 'demo' } }, additionalProperties: false } as const
const graphParams = { type: 'object', properties: { id: { type: 'string', pattern: '^g-[0-9a-f]{8}$' } }, required: ['id'] } as const

/**
 * The task-graph demo: a page sends `graph:start`; a simulated planner decomposes the goal into a graph of tasks and
 * runs it, keeping the graph in the state room `graph:<id>` (the pages get JSON Patches) and telling the room
 * `tasks:<id>` what happens (`task_update`, `node_status`, notices), with a review question that times out.
 */
export async function buildApp(options: AppOptions = {}): Promise<FastifyInstance> {
  const secret = options.secret ?? process.env.JWT_SECRET ?? randomBytes(48).toString('hex')
  const stepMs = options.stepMs ?? 500
  const app = Fastify({ logger: options.logger ?? false })

  await app.register(realtime, {
    events: agentEvents,
    jwt: { secret },
    adapter: memoryAdapter(),
    // Frames that wait together during a burst (a node finishing, the next ones starting) go out as one.
    batch: true,
    history: { rooms: (room) => (GRAPH_ROOM.test(room) ? GRAPH_HISTORY : undefined) },
    ...(options.origins === undefined ? {} : { cors: { origin: [...options.origins] } }),
    // A real app checks that the user may see the graph. Here any signed-in user may watch and answer any graph; only
    // the server writes to its rooms.
    authorize: ({ room, action }) => action === 'subscribe' && GRAPH_ROOM.test(room)
  })

  // Planners still going when the app closes stop at their next step.
  const shutdown = new AbortController()
  app.addHook('onClose', async () => shutdown.abort())
  const started = new Set<string>()

  app.realtime.handle('graph:start', StartGraph, async ({ data, user }) => {
    if (started.has(data.graphId)) throw new RealtimeError('already_started', `graph ${data.graphId} is already planned`)
    started.add(data.graphId)
    const log = app.log.child({ graphId: data.graphId, user: user.sub })
    runPlan({
      app,
      id: data.graphId,
      goal: data.goal,
      stepMs,
      answerWithinMs: data.answerWithinS * 1000,
      signal: shutdown.signal,
      log
    }).catch((err) => {
      if (!shutdown.signal.aborted) log.error({ err }, 'the planner failed')
    })
    return { graphId: data.graphId, rooms: [graphRoom(data.graphId), eventsRoom(data.graphId)] }
  })

  // Development only: hands out a token for any user name. A real app signs tokens after a login.
  app.get<{ Querystring: { user: string } }>('/dev/token', { schema: { querystring: tokenQuery } }, async (request) => {
    const { user } = request.query
    return { token: app.jwt.sign({ sub: user, name: user }, { expiresIn: '1h' }), user }
  })

  // Development only: the graph as the server holds it, the value every page's copy must equal.
  app.get<{ Params: { id: string } }>('/dev/graphs/:id', { schema: { params: graphParams } }, async (request, reply) => {
    const state = app.realtime.state(graphRoom(request.params.id))
    const value = await state.get()
    if (value === undefined) return reply.code(404).send({ message: 'no such graph (or it has expired)' })
    return { version: state.version, value }
  })

  await servePage(app, new URL('./public/', import.meta.url), ['index.html', 'page.css', 'page.js'], 'example:task-graph')
  return app
}
