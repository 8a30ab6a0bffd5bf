import { listenAddress, stopOnSignals } from '../shared/page.js'
import { buildApp } from './app.js'

const { port, host, origin, base, origins } = await listenAddress()

const app = await buildApp({ logger: { level: 'info' }, origins })
await app.listen({ port, host })

console.log(`
conversation demo listening on ${base}
  Page:       ${base}/   (sign in by name; open a second window, sign in as someone else, share a conversation)
  WebSocket:  ws://${origin}:${port}/ws   (the JWT comes from the HttpOnly cookie "token" set by POST /login)
  Storage:    in memory: a restart forgets the conversations${process.env.JWT_SECRET ? '' : ' and the sign-ins (set JWT_SECRET to keep them)'}
`)

stopOnSignals(app)
