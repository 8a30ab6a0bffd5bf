import { createServer } from 'node:net'
import { buildApp } from './app.js'

const wanted = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'
const stepMs = process.env.STEP_MS === undefined ? undefined : Number(process.env.STEP_MS)
if (stepMs !== undefined && !(Number.isInteger(stepMs) && stepMs >= 0)) {
  throw new Error(`STEP_MS must be a whole number of milliseconds (got "${process.env.STEP_MS}")`)
}

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
// The page is served from here, so its origin may connect (under either local name).
const origins = [...new Set([base, `http://localhost:${port}`, `http://127.0.0.1:${port}`])]

const app = await buildApp({ logger: { level: 'info' }, origins, ...(stepMs === undefined ? {} : { stepMs }) })
await app.listen({ port, host })

console.log(`
task-graph demo listening on ${base}
  Page:       ${base}/   (reload it mid-run, or open it with ?ws=off to see the SSE fallback)
  WebSocket:  ws://${origin}:${port}/ws   (SSE: ${base}/ws/sse)
  Graph:      ${base}/dev/graphs/<id>   (the state the server holds)
  Dev token:  ${base}/dev/token?user=demo
  Adapter:    in memory (one instance)
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
