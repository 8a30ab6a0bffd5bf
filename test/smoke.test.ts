import t from 'tap'
import { buildApp, connect } from './helpers/index.js'

t.test('smoke', async (t) => {
  const app = await buildApp(t, { authorize: async () => true })
  const c = await connect(app)
  const ready = await c.next('ready')
  t.equal(ready.data.userId, 'alice')
  const sub = await c.subscribe('workflow:1')
  t.equal(sub.type, 'subscribed')
  await app.realtime.emit('workflow:1', { type: 'agent:thought', data: { runId: 'r', content: 'hi' } })
  const ev = await c.next('agent:thought')
  t.equal(ev.seq, 1)
  await c.close()
})
