// Application hooks go through one wrapper (src/server/hooks.ts): whatever a hook throws is logged and answered,
// never thrown at the connection or the process.
import t from 'tap'
import { buildApp, connect, logCapture } from './helpers/index.js'

t.test('a presenceInfo hook that throws is logged; the user is subscribed and present, without info', async (t) => {
  const log = logCapture()
  const app = await buildApp(
    t,
    {
      authorize: () => true,
      presence: true,
      presenceInfo: () => {
        throw new Error('no profile')
      }
    },
    { fastify: log.fastify }
  )
  const alice = await connect(app, 'alice')
  const subscribed = await alice.subscribe('doc:1')
  t.equal(subscribed.type, 'subscribed')
  const reply = await alice.call({ type: 'presence', id: 'p', room: 'doc:1' })
  t.same(reply.data, { members: [{ user: 'alice', connections: 1 }] })
  const failed = log.records().find((r) => r.msg === 'realtime presenceInfo failed')
  t.ok(failed, 'the failure is logged')
  t.equal(failed?.room, 'doc:1')
  t.equal((failed?.err as { message?: string } | undefined)?.message, 'no profile')
})
