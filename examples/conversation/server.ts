import { createServer } from 'node:net'
import { buildApp } from './app.js'

const wanted = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '127.0.0.1'

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
// The page is served from here, so its origin may open the WebSocket with the cookie (under either local name).
const origins = [...new Set([base, `http://localhost:${port}`, `http://127.0.0.1:${port}`])]

const app = await buildApp({ logger: { level: 'info' }, origins })
await app.listen({ port, host })

console.log(`
conversation demo listening on ${base}
  Page:       ${base}/   (sign in by name; open a second window, sign in as someone else, share a conversation)
  WebSocket:  ws://${origin}:${port}/ws   (the JWT comes from the HttpOnly cookie "token" set by POST /login)
  Storage:    in memory: a restart forgets the conversations${process.env.JWT_SECRET ? '' : ' and the sign-ins (set JWT_SECRET to keep them)'}
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
