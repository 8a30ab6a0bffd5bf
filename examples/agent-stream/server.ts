import { listenAddress, stopOnSignals } from '../shared/page.js'
import { AGENT_PATH, buildApp } from './app.js'

const redisUrl = process.env.REDIS_URL || undefined

const { port, host, origin, base, origins } = await listenAddress()

const app = await buildApp({ logger: { level: 'info' }, origins })
await app.listen({ port, host })

const token = app.jwt.sign({ sub: 'demo', name: 'demo' }, { expiresIn: '1h' })
// The password of a Redis URL stays out of the output.
const adapter = redisUrl === undefined ? 'in memory (one instance)' : `Redis at ${redisUrl.replace(/\/\/([^@/]*)@/, '//***@')}`
console.log(`
agent-stream demo listening on ${base}
  Dashboard:  ${base}/   (open it in a second window, or with ?user=<name>, to see presence)
  WebSocket:  ws://${origin}:${port}/ws   (protocol realtime.v1; a run's events in the room agui:<threadId>)
  AG-UI:      POST ${base}${AGENT_PATH}   (a RunAgentInput, with Authorization: Bearer <token>)
  Dev token:  ${base}/dev/token?user=demo
  Adapter:    ${adapter}

Token for user "demo" (valid 1 h):
  ${token}

Start a run and watch it from a terminal:
  npx tsx examples/agent-stream/watch.ts --url ws://localhost:${port}/ws --token ${token}
`)
if (redisUrl !== undefined) {
  console.log(`With another instance on this Redis, start the run there (POST ${AGENT_PATH}) and watch it here: add
  --start-url ws://localhost:<its port>/ws
`)
}
if (redisUrl !== undefined && !process.env.JWT_SECRET) {
  console.warn(
    'Warning: REDIS_URL is set but JWT_SECRET is not, so this instance made a secret of its own and the other\n' +
      'instances refuse its tokens (HTTP 401). Start every instance with the same JWT_SECRET.\n'
  )
}

stopOnSignals(app)
