// Client publish: ephemeral signals from one client to a room's members, volatile, allowed by authorize.
import { Type } from '@sinclair/typebox'
import t from 'tap'
import WebSocket from 'ws'
import { createClient } from '../src/client/index.js'
import { agentEvents, defineEvents } from '../src/index.js'
import type { AuthorizeContext } from '../src/options.js'
import { until } from './helpers/client.js'
import { faultyAdapter } from './helpers/faulty-adapter.js'
import { buildApp, connect, delay, logCapture, sign, wsUrl } from './helpers/index.js'

const events = defineEvents({ ...agentEvents, typing: Type.Object({ typing: Type.Boolean() }), nudge: Type.Unknown() })

t.test('a publish reaches every member with from and no seq, is acked, and leaves no history', async (t) => {
  const asked: AuthorizeContext['action'][] = []
  const app = await buildApp(t, {
    events,
    authorize: ({ action }) => {
      asked.push(action)
      return true
    }
  })
  const ann = await connect(app, 'ann')
  const bob = await connect(app, 'bob')
  const epoch = (await ann.subscribe('doc:1')).data.epoch
  await bob.subscribe('doc:1')
  const ack = await ann.call({ type: 'publish', room: 'doc:1', data: { type: 'typing', data: { typing: true } } })
  t.same(ack.type, 'ack')
  t.equal(ack.data, null)
  const got = await bob.next('typing')
  t.equal(got.from, 'ann')
  t.equal(got.room, 'doc:1')
  t.equal(got.seq, undefined, 'volatile: no seq')
  t.same(got.data, { typing: true })
  t.match(got.ts, /^\d{4}-\d\d-\d\dT/)
  t.equal((await ann.next('typing')).from, 'ann', 'the sender gets it too, being subscribed')
  await ann.call({ type: 'publish', room: 'doc:1', data: { type: 'typing', data: { typing: false } } })
  t.same(asked, ['subscribe', 'subscribe', 'publish'], 'authorize is asked once per connection and room')
  await ann.call({ type: 'publish', room: 'doc:1', data: { type: 'nudge' } })
  const nudge = await bob.next('nudge')
  t.equal(nudge.data, null, 'an event whose schema allows no data is sent with data null')

  const late = await connect(app, 'cid')
  await late.subscribe('doc:1', { since: 0, epoch })
  await delay(50)
  t.equal(late.frames.filter((f) => f.type === 'typing').length, 0, 'nothing of it in the history')
})

t.test('publish is refused with a clear error: not allowed, unknown type, bad data, bad room, no data', async (t) => {
  const logs = logCapture('info')
  let asks = 0
  const app = await buildApp(
    t,
    {
      events,
      authorize: ({ action, room }) => {
        if (action !== 'publish') return true
        asks++
        if (room === 'boom') throw new Error('the policy service is down')
        return room === 'open'
      }
    },
    { fastify: logs.fastify }
  )
  const c = await connect(app)
  const publish = (room: string, data: unknown) => c.call({ type: 'publish', room, data })
  t.same((await publish('closed', { type: 'typing', data: { typing: true } })).data, {
    code: 'forbidden',
    message: 'not allowed to publish to "closed"'
  })
  t.equal((await publish('closed', { type: 'typing', data: { typing: true } })).data.code, 'forbidden')
  t.equal(asks, 1, 'a denial is remembered too')
  t.equal((await publish('boom', { type: 'typing', data: { typing: true } })).data.code, 'forbidden')
  t.ok(logs.records().some((r) => r.msg === 'realtime authorize failed; publish denied'))
  t.ok(logs.records().some((r) => r.msg === 'realtime publish denied'))
  t.same((await publish('open', { type: 'nope', data: {} })).data, { code: 'unknown_type', message: 'unknown event type "nope"' })
  t.same((await publish('open', { type: 'typing', data: { typing: 'yes' } })).data.code, 'invalid_message')
  t.match((await publish('open', { type: 'typing', data: { typing: 'yes' } })).data.message, /invalid data for "typing" at \/typing/)
  t.equal((await publish('Not A Room', { type: 'typing', data: { typing: true } })).data.code, 'invalid_room')
  t.equal((await publish('open', undefined)).data.code, 'invalid_message')
  t.equal((await publish('open', { type: 'typing', data: { typing: true }, extra: 1 })).data.code, 'invalid_message')
  t.equal((await publish('open', { type: 'typing', data: { typing: true } })).type, 'ack', 'and a good one still goes')
  t.equal(c.closeCode, undefined)
})

t.test('publishes count against the rate limit; the remembered answers are bounded and forgotten on a new token', async (t) => {
  let asks = 0
  const app = await buildApp(t, {
    events,
    limits: { roomsPerConnection: 2 },
    authorize: ({ action }) => {
      if (action === 'publish') asks++
      return true
    }
  })
  const c = await connect(app)
  for (const room of ['a', 'b', 'c', 'a']) await c.call({ type: 'publish', room, data: { type: 'typing', data: { typing: true } } })
  t.equal(asks, 4, 'a, b, c, then a again: only two answers are kept')
  await c.call({ type: 'auth', data: { token: sign('alice') } })
  await c.call({ type: 'publish', room: 'a', data: { type: 'typing', data: { typing: true } } })
  t.equal(asks, 5, 'asked again after the token was refreshed')

  for (let i = 0; i < 60; i++) c.send({ type: 'publish', id: `p${i}`, room: 'a', data: { type: 'typing', data: { typing: true } } })
  const answers = await Promise.all(Array.from({ length: 60 }, (_, i) => c.nextWhere((f) => f.id === `p${i}`, `p${i}`)))
  const limited = answers.filter((f) => f.type === 'error' && f.data.code === 'rate_limited').length
  t.ok(limited > 0 && limited < 60, `${limited} of 60 were rate limited`)
})

t.test('a publish the adapter fails is answered internal', async (t) => {
  const logs = logCapture('error')
  const adapter = faultyAdapter()
  adapter.fail('publish', { message: 'broker down' })
  const app = await buildApp(t, { events, authorize: () => true, adapter }, { fastify: logs.fastify })
  const c = await connect(app)
  t.same((await c.call({ type: 'publish', room: 'r', data: { type: 'typing', data: { typing: true } } })).data, {
    code: 'internal',
    message: 'internal error'
  })
  t.ok(logs.records().some((r) => r.msg === 'realtime publish failed'))
})

t.test('the client SDK publishes, sees from, and refuses to queue a publish while disconnected', async (t) => {
  const app = await buildApp(t, { events, authorize: () => true })
  const watcher = await connect(app, 'bob')
  await watcher.subscribe('doc:1')
  const client = createClient({ url: wsUrl(app), WebSocket: WebSocket as never, token: sign('ann'), events })
  t.teardown(() => client.close())
  const seen: Array<string | undefined> = []
  client.subscribe('doc:1', (e) => seen.push(e.from))
  await t.rejects(client.publish('doc:1', 'typing', { typing: true }), { code: 'disconnected' })
  await until(() => client.state === 'open')
  await client.publish('doc:1', 'typing', { typing: true })
  t.equal((await watcher.next('typing')).from, 'ann')
  await until(() => seen.length === 1)
  t.same(seen, ['ann'])
  await t.rejects(client.publish('doc:1', 'nope' as never, {} as never), { code: 'unknown_type' })
  client.close()
  await t.rejects(client.publish('doc:1', 'typing', { typing: true }), { code: 'closed' })
})
