import { listenAddress, stopOnSignals } from '../shared/page.js'
import { buildApp } from './app.js'

const stepMs = process.env.STEP_MS === undefined ? undefined : Number(process.env.STEP_MS)
if (stepMs !== undefined && !(Number.isInteger(stepMs) && stepMs >= 0)) {
  throw new Error(`STEP_MS must be a whole number of milliseconds (got "${process.env.STEP_MS}")`)
}

const { port, host, origin, base, origins } = await listenAddress()

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

stopOnSignals(app)
