// Contenders 1 and 7 (the same server; the clients of 7 are on SSE): fastify-realtime through its public API only,
// loaded from the built package (dist/) by its name, with its defaults: JWT verified before the upgrade, envelope with
// seq and ts, history on. `authorize` lets every client into the benchmark's room; each client has its own user, as
// the per-user connection limit expects. `--realtime-coalesce off` registers it with `coalesce: false` (COALESCE_ENV).
import Fastify from 'fastify'
import type RealtimePlugin from '../../../src/index.js'
import { COALESCE_ENV, EVENT_TYPE, ROOM, SECRET } from '../common.js'
import { host } from '../host.js'

// A name, not a path: the package resolves itself through its export map, as an installed one would.
const PACKAGE = 'fastify-realtime'

host(async () => {
  const realtime: typeof RealtimePlugin = (await import(PACKAGE)).default
  const app = Fastify({ logger: false })
  const coalesce = process.env[COALESCE_ENV] !== 'off'
  await app.register(realtime, { jwt: { secret: SECRET }, authorize: ({ room }) => room === ROOM, coalesce })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return {
    port: (app.server.address() as { port: number }).port,
    emit(data) {
      app.realtime.emit(ROOM, { type: EVENT_TYPE, data }).catch((err: unknown) => {
        console.error(err)
        process.exit(1)
      })
    },
    subscribers: () => app.realtime.stats().subscriptions
  }
})
