import { buildApp } from './app.js'

const wanted = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

const app = await buildApp({ logger: { level: 'info' } })
await app.listen({ port: wanted, host })
// With PORT=0 the system picks a free port: print the one in use.
const { port } = app.server.address() as { port: number }

const token = app.jwt.sign({ sub: 'demo', name: 'demo' }, { expiresIn: '1h' })
const origin = host === '0.0.0.0' || host === '::' ? 'localhost' : host
console.log(`
agent-stream demo listening on http://${origin}:${port}
  WebSocket:  ws://${origin}:${port}/ws   (protocol realtime.v1)
  Dev token:  http://${origin}:${port}/dev/token?user=demo

Token for user "demo" (valid 1 h):
  ${token}

Watch a run:
  npx tsx examples/agent-stream/watch.ts --url ws://localhost:${port}/ws --token ${token}
`)

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
