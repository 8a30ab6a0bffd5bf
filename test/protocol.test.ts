import t from 'tap'
import { Type } from '../src/index.js'
import { explainServerMessage } from './helpers/conformance.js'
import { buildApp, connect } from './helpers/index.js'

t.test('every kind of frame the server sends conforms to the realtime.v1 schemas', async (t) => {
  const app = await buildApp(t, { authorize: () => true, snapshot: () => ({ items: [] }) })
  app.realtime.handle('echo', Type.Object({ text: Type.String() }), ({ data }) => data)
  const client = await connect(app)
  const frames = [client.ready]
  frames.push(await client.subscribe('r'))
  await app.realtime.emit('r', { type: 'agent:thought', data: { runId: 'x', content: 'y' } })
  await app.realtime.emit('r', { type: 'agent:thought', data: { runId: 'x', content: 'v' } }, { volatile: true })
  frames.push(await client.next('agent:thought'), await client.next('agent:thought'))
  frames.push(await client.call({ type: 'echo', data: { text: 'hi' } }))
  frames.push(await client.call({ type: 'echo', data: {} }))
  frames.push(await client.call({ type: 'ping' }))
  const request = app.realtime.request(client.ready.data.connectionId, { type: 'hitl_request', data: { requestId: 'q', question: '?' } })
  const asked = await client.next('hitl_request')
  frames.push(asked)
  client.send({ type: 'reply', id: asked.id, data: 'ok' })
  await request
  frames.push(await client.call({ type: 'unsubscribe', room: 'r' }))
  t.same(
    frames.map((f) => f.type),
    ['ready', 'subscribed', 'agent:thought', 'agent:thought', 'ack', 'error', 'pong', 'hitl_request', 'unsubscribed']
  )
  t.same(
    frames.map((f) => explainServerMessage(f)),
    frames.map(() => undefined)
  )
  t.same(client.violations, [])
})

t.test('the schema check finds a frame that does not conform', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [{ type: 'ready', data: { connectionId: 'c' } }, /^ready \/data\/userId: Expected required property/],
    [{ type: 'subscribed', room: 'r', data: { seq: 1, recovered: true } }, /^subscribed \/data\/epoch/],
    [{ type: 'error', data: { message: 'x' } }, /^error \/data\/code/],
    [{ type: 'ack', data: 1 }, /^ack \/id/],
    [{ type: 'pong', extra: 1 }, /^pong \/extra: Unexpected property/],
    [{ type: 'agent:thought', room: 'r', seq: 0, data: {}, ts: 'x' }, /not an event .*\/seq.* nor a request/],
    [{ room: 'r' }, /not an event .*\/type/],
    [null, /not an event/]
  ]
  for (const [frame, reason] of bad) t.match(explainServerMessage(frame), reason, JSON.stringify(frame))
})

t.test('an emit is serialized once, whatever the number of recipients', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => connect(app, `u${i}`)))
  await Promise.all(clients.map((c) => c.subscribe('fan')))
  const original = JSON.stringify
  const count = async (room: string): Promise<number> => {
    let calls = 0
    JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => {
      calls++
      return original(...args)
    }) as typeof JSON.stringify
    try {
      await app.realtime.emit(room, { type: 'agent:thought', data: { runId: 'r', content: 'to fifty' } })
    } finally {
      JSON.stringify = original
    }
    return calls
  }
  const alone = await count('nobody-here')
  t.ok(alone <= 2, 'the envelope and its data: at most two JSON.stringify calls')
  t.equal(await count('fan'), alone, 'as many for 50 recipients as for none')
  const got = await Promise.all(clients.map((c) => c.next('agent:thought')))
  t.equal(got.filter((e) => e.data.content === 'to fifty').length, 50)
})
