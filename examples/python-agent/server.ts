// The web server of the Python executor example: `npm run example:python`. A signed-in client sends `graph:run`
// { graphId }; the server starts examples/python-agent/executor.py for that execution, and the executor reaches the
// clients only through the HTTP server API. Clients watch one execution (`execution:<id>`), every execution of a graph
// (`graph:<id>`), and their own room (`user:<sub>`: questions and notifications).
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import realtime, { Type, userRoom } from '../../src/index.js'
import { stopOnSignals } from '../shared/page.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const key = process.env.REALTIME_KEY ?? randomBytes(24).toString('base64url')
const executor = fileURLToPath(new URL('./executor.py', import.meta.url))

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } })
await app.register(realtime, {
  jwt: { secret: process.env.JWT_SECRET ?? randomBytes(48).toString('hex') },
  serverApi: { keys: [key] },
  // A real app checks that the user may see the graph (its owner, its team). The demo lets any signed-in user watch.
  authorize: ({ user, room }) => room === userRoom(user.sub) || room.startsWith('execution:') || room.startsWith('graph:')
})

// Development only: a token for any user name. A real app signs tokens after a login.
app.get<{ Querystring: { user?: string } }>('/dev/token', async (request) => {
  const user = request.query.user ?? 'demo'
  return { token: app.jwt.sign({ sub: user }, { expiresIn: '1h' }), user }
})

const running = new Set<ChildProcess>()
app.addHook('onClose', async () => {
  for (const child of running) child.kill('SIGTERM')
})

const GraphRun = Type.Object({ graphId: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) })
app.realtime.handle('graph:run', GraphRun, ({ data, user, log }) => {
  const executionId = `exec-${randomUUID().slice(0, 8)}`
  const child = spawn('python3', [executor], {
    env: {
      ...process.env,
      REALTIME_API: `http://127.0.0.1:${(app.server.address() as { port: number }).port}/ws/api`,
      REALTIME_KEY: key,
      GRAPH_ID: data.graphId,
      EXECUTION_ID: executionId,
      USER_ID: String(user.sub)
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  running.add(child)
  createInterface({ input: child.stdout }).on('line', (line) => log.info({ executor: JSON.parse(line) }, 'executor'))
  createInterface({ input: child.stderr }).on('line', (line) => log.warn({ executionId, line }, 'executor stderr'))
  child.once('exit', (code) => {
    running.delete(child)
    log.info({ executionId, code }, 'executor exited')
  })
  return { executionId, room: `execution:${executionId}` }
})

await app.listen({ port, host })
const base = `http://${host}:${(app.server.address() as { port: number }).port}`
console.log(`
python-agent example listening on ${base}
  WebSocket:   ${base.replace('http', 'ws')}/ws   (protocol realtime.v1; a token from ${base}/dev/token?user=<name>)
  Server API:  ${base}/ws/api   (key: ${key})
Send graph:run { graphId } to start an execution; watch execution:<id>, graph:<id> and user:<you>.
`)

stopOnSignals(app)
