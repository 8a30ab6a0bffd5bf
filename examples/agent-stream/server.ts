import { createServer } from 'node:net'
import { AGENT_PATH, buildApp } from './app.js'

const wanted = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const redisUrl = process.env.REDIS_URL || undefined

/** The port to listen on. With PORT=0 one is picked now: the page's origin must be known before the plugin is registered. */
function pickPort(): Promise<number> {
  if (wanted !== 0) return Promise.resolve(wanted)
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, host, () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

const port = await pickPort()
const origin = host === '0.0.0.0' || host === '::' ? 'localhost' : host
const base = `http://${origin}:${port}`
// The dashboard is served from here, so its origin may open the WebSocket (under either local name).
const origins = [...new Set([base, `http://localhost:${port}`, `http://127.0.0.1:${port}`])]

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

let stopping = false
async function stop(signal: string): Promise<void> {
  if (stopping) return
  stopping = true
  app.log.info({ signal }, 'shutting down')
  await app.close()
  process.exit(0)
}
process.once('SIGINT', () => void stop('SIGINT'))
process.once('SIGTERM', () => void stop('SIGTERM'))
