import t from 'tap'
import { connectTest } from '../src/testing.js'
import { buildApp } from './helpers/index.js'

const question = (requestId: string) => ({
  type: 'hitl_request' as const,
  data: { requestId, question: 'Publish?', options: [{ id: 'yes', label: 'Yes' }] }
})

t.test('request() to a connection resolves with the client reply', async (t) => {
  const app = await buildApp(t)
  const client = await connectTest(app)
  const pending = app.realtime.request<{ optionId: string }>(client.connectionId, question('q1'), { timeout: 2000 })
  const asked = await client.next('hitl_request')
  t.match(asked, { type: 'hitl_request', id: /^r\d+$/, data: { requestId: 'q1', question: 'Publish?' } })
  t.equal(asked.seq, undefined, 'a request is not a room event')
  t.equal(app.realtime.stats().pendingRequests, 1)
  client.answer(asked, { optionId: 'yes' })
  t.same(await pending, { optionId: 'yes' })
  t.equal(app.realtime.stats().pendingRequests, 0)
  client.answer(asked, { optionId: 'again' })
  t.same((await client.next('error')).data, { code: 'unknown_request', message: `no pending request "${asked.id}" for this connection` })
})

t.test('request() to a room: the first reply wins, a later one is told the request is gone', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const a = await connectTest(app, { user: 'alice' })
  const b = await connectTest(app, { user: 'bob' })
  const outsider = await connectTest(app, { user: 'eve' })
  await a.subscribe('workflow:1')
  await b.subscribe('workflow:1')
  const pending = app.realtime.request('workflow:1', question('q2'))
  const [qa, qb] = [await a.next('hitl_request'), await b.next('hitl_request')]
  t.equal(qa.id, qb.id)
  outsider.answer(qa, 'hijack')
  t.equal((await outsider.next('error')).data.code, 'unknown_request', 'a connection that was not asked cannot answer')
  b.answer(qb, 'from bob')
  t.equal(await pending, 'from bob')
  a.answer(qa, 'from alice')
  t.equal((await a.next('error')).data.code, 'unknown_request')
})

t.test('request() rejects on timeout, and a late reply is refused', async (t) => {
  const app = await buildApp(t, { requestTimeout: 50 })
  const client = await connectTest(app)
  const id = client.connectionId
  await t.rejects(app.realtime.request(id, question('q3')), {
    code: 'FST_REALTIME_REQUEST_TIMEOUT',
    message: /request r\d+ timed out after 50 ms/
  })
  await t.rejects(app.realtime.request(id, question('q4'), { timeout: 20 }), { message: /after 20 ms/ })
  client.answer(await client.next('hitl_request'), 1)
  t.equal((await client.next('error')).data.code, 'unknown_request')
  t.equal(app.realtime.stats().pendingRequests, 0)
})

t.test('request() rejects when every asked connection closes, not before', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const a = await connectTest(app, { user: 'alice' })
  const b = await connectTest(app, { user: 'bob' })
  await a.subscribe('r')
  await b.subscribe('r')
  let settled = false
  const pending = t.rejects(
    app.realtime.request('r', question('q5'), { timeout: 5000 }).finally(() => {
      settled = true
    }),
    { code: 'FST_REALTIME_REQUEST_DISCONNECTED', message: /lost its connection/ }
  )
  await a.next('hitl_request')
  await a.close()
  await b.next('hitl_request')
  t.equal(settled, false, 'one connection is still there to answer')
  await b.close()
  await pending
  t.equal(app.realtime.stats().pendingRequests, 0)
})

t.test('request() rejects when the client answers with an error', async (t) => {
  const app = await buildApp(t)
  const client = await connectTest(app)
  const pending = app.realtime.request(client.connectionId, question('q6'))
  client.decline(await client.next('hitl_request'), 'declined', 'User closed the dialog')
  await t.rejects(pending, { code: 'FST_REALTIME_REQUEST_REJECTED', message: /rejected by the client: declined: User closed the dialog/ })
})

t.test('request() with nobody to ask rejects at once; an invalid event throws', async (t) => {
  const app = await buildApp(t)
  await t.rejects(app.realtime.request('no-such-connection-or-room', question('q7')), { code: 'FST_REALTIME_NO_TARGET' })
  await t.rejects(app.realtime.request('a room name {not} allowed', question('q7')), { code: 'FST_REALTIME_NO_TARGET' })
  const request = app.realtime.request as (target: string, event: unknown) => Promise<unknown>
  t.throws(() => request('user:alice', { type: 'hitl_request', data: {} }), { code: 'FST_REALTIME_INVALID_EVENT' })
})
