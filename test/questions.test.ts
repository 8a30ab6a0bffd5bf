// Durable human in the loop: app.realtime.ask() questions live in the room's history and shared state, the first
// answer wins on any connection or instance, and everyone is told it is settled.
import t from 'tap'
import { redisAdapter } from '../src/adapters/redis.js'
import type { ClientQuestion } from '../src/client/index.js'
import type { AgentEvents } from '../src/index.js'
import { connectTest } from '../src/testing.js'
import { sdk, until } from './helpers/client.js'
import { faultyAdapter } from './helpers/faulty-adapter.js'
import { buildApp, connect, delay, logCapture, sign } from './helpers/index.js'
import { requireRedis, startRedis } from './helpers/redis.js'

const question = (requestId: string) => ({
  type: 'hitl_request' as const,
  data: { requestId, question: 'Publish the summary?', options: [{ id: 'yes', label: 'Yes' }] }
})

t.test('two connections of one user: both are shown the question, the first answer wins, the other is told', async (t) => {
  const app = await buildApp(t)
  const tab1 = await connectTest(app, { user: 'alice' })
  const tab2 = await connectTest(app, { user: 'alice' })
  await tab1.subscribe('user:alice')
  await tab2.subscribe('user:alice')
  const answer = app.realtime.ask<{ optionId: string }>({ user: 'alice' }, question('q1'), { timeout: 5000 })
  const [seen1, seen2] = [await tab1.next('hitl_request'), await tab2.next('hitl_request')]
  t.match(seen1, { room: 'user:alice', id: /^q\./, seq: 1, data: { requestId: 'q1', question: 'Publish the summary?' } })
  t.equal(seen2.id, seen1.id, 'one question, shown on both')
  tab2.answer(seen2, { optionId: 'yes' })
  t.same(await tab2.next('ack'), { type: 'ack', id: seen1.id, data: null }, 'the first answer is acknowledged')
  t.same(await answer, { optionId: 'yes' })
  for (const tab of [tab1, tab2]) {
    t.match(await tab.next('hitl_resolved'), {
      room: 'user:alice',
      seq: 2,
      data: { id: seen1.id, status: 'answered', by: 'alice', answer: { optionId: 'yes' } }
    })
  }
  tab1.answer(seen1, { optionId: 'no' })
  t.match(await tab1.next('error'), { id: seen1.id, room: 'user:alice', data: { code: 'already_answered' } })
})

t.test('a question survives a reconnect: resumed from the history, or listed in subscribed', async (t) => {
  const app = await buildApp(t)
  const before = await connectTest(app, { user: 'bob' })
  const { epoch } = await before.subscribe('user:bob')
  await before.close()
  const answer = app.realtime.ask({ user: 'bob' }, question('q2'))
  await delay(20)
  const resumed = await connectTest(app, { user: 'bob' })
  const info = await resumed.subscribe('user:bob', { since: 0, epoch })
  t.equal(info.recovered, true)
  const replayed = await resumed.next('hitl_request')
  t.match(replayed, { id: /^q\./, seq: 1 }, 'replayed from the history with its id')
  const fresh = await connectTest(app, { user: 'bob' })
  const listed = (await fresh.subscribe('user:bob')) as unknown as { questions: { id: string; type: string; data: unknown }[] }
  t.same(
    listed.questions.map((q) => [q.id, q.type, q.data]),
    [[replayed.id, 'hitl_request', question('q2').data]],
    'a new connection finds it in subscribed.data.questions'
  )
  fresh.answer({ id: replayed.id, room: 'user:bob' }, { ok: true })
  t.same(await answer, { ok: true })
  const after = await connectTest(app, { user: 'bob' })
  t.notOk('questions' in (await after.subscribe('user:bob')), 'a settled question is listed no more')
})

t.test('timeout: the promise rejects, the room is told, and a late answer is already_answered', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = await connectTest(app)
  await client.subscribe('workflow:t')
  // The rejection is expected from the start: under load it may come before the question is even read.
  let rejection: unknown
  const asked = app.realtime.ask('workflow:t', question('q3'), { timeout: 50 }).catch((err: unknown) => {
    rejection = err
  })
  const shown = await client.next('hitl_request')
  await asked
  t.match(rejection, { code: 'FST_REALTIME_REQUEST_TIMEOUT', message: `fastify-realtime: request ${shown.id} timed out after 50 ms` })
  t.same((await client.next('hitl_resolved')).data, { id: shown.id, status: 'timeout' })
  client.answer(shown, 'late')
  t.equal((await client.next('error')).data.code, 'already_answered')
})

t.test('a declining reply rejects ask(); only a connection holding the room may answer; unknown ids are told', async (t) => {
  const app = await buildApp(t, { authorize: ({ room }) => room !== 'secret' })
  const member = await connectTest(app, { user: 'm' })
  const outsider = await connectTest(app, { user: 'o' })
  await member.subscribe('workflow:d')
  const asked = app.realtime.ask('workflow:d', question('q4'), { timeout: Number.POSITIVE_INFINITY })
  const shown = await member.next('hitl_request')
  outsider.answer(shown, 'hijack')
  t.match(await outsider.next('error'), {
    id: shown.id,
    data: { code: 'forbidden', message: 'subscribe to "workflow:d" to answer its questions' }
  })
  member.decline(shown, 'declined', 'not now')
  await t.rejects(asked, { code: 'FST_REALTIME_REQUEST_REJECTED', message: /declined: not now/ })
  t.same((await member.next('hitl_resolved')).data, {
    id: shown.id,
    status: 'declined',
    by: 'm',
    error: { code: 'declined', message: 'not now' }
  })
  member.answer({ id: 'q.nope', room: 'workflow:d' }, 1)
  t.match(await member.next('error'), { id: 'q.nope', data: { code: 'unknown_request', message: 'no question "q.nope" in "workflow:d"' } })
  const nothing = app.realtime.ask('workflow:d', question('q5'))
  member.answer(await member.next('hitl_request'), undefined)
  t.equal(await nothing, null, 'a reply without data answers null')
})

t.test('the same idempotency key gives the same question: pending, answered, or asked anew after a timeout', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = await connectTest(app)
  await client.subscribe('workflow:k')
  const first = app.realtime.ask('workflow:k', question('q6'), { idempotencyKey: 'run-1/step-3' })
  const shown = await client.next('hitl_request')
  const again = app.realtime.ask('workflow:k', question('q6'), { idempotencyKey: 'run-1/step-3' })
  await delay(20)
  t.equal(client.queue.length, 0, 'asked once')
  client.answer(shown, 'approved')
  t.same(await Promise.all([first, again]), ['approved', 'approved'])
  t.equal(
    await app.realtime.ask('workflow:k', question('q6'), { idempotencyKey: 'run-1/step-3' }),
    'approved',
    'answered: the answer, at once'
  )
  const declined = app.realtime.ask('workflow:k', question('q7'), { idempotencyKey: 'declined' })
  client.decline(await client.next('hitl_request'), 'no', 'never')
  await t.rejects(declined)
  await t.rejects(app.realtime.ask('workflow:k', question('q7'), { idempotencyKey: 'declined' }), { code: 'FST_REALTIME_REQUEST_REJECTED' })
  await t.rejects(app.realtime.ask('workflow:k', question('q8'), { idempotencyKey: 'expiring', timeout: 20 }), {
    code: 'FST_REALTIME_REQUEST_TIMEOUT'
  })
  const expired = await client.next('hitl_request')
  const renewed = app.realtime.ask('workflow:k', question('q8'), { idempotencyKey: 'expiring' })
  const second = await client.next('hitl_request')
  t.not(second.id, expired.id, 'a timed-out question is asked anew')
  client.answer(second, 'now')
  t.equal(await renewed, 'now')
})

t.test('bad questions throw at once; an app that closes rejects its waiting asks', async (t) => {
  const app = await buildApp(t)
  const ask = app.realtime.ask as (target: unknown, event: unknown, options?: unknown) => Promise<unknown>
  t.throws(() => ask('bad room', question('x')), { code: 'FST_REALTIME_INVALID_EVENT' })
  t.throws(() => ask('r', { type: 'nope', data: {} }), { message: /unknown event type "nope"/ })
  t.throws(() => ask('r', question('x'), { timeout: 0 }), { code: 'FST_REALTIME_INVALID_OPTION', message: /ask timeout must be/ })
  t.throws(() => ask('r', question('x'), { idempotencyKey: '' }), { message: /idempotencyKey must be a string of 1 to 256/ })
  const waiting = t.rejects(app.realtime.ask('r', question('x')), { code: 'FST_REALTIME_CLOSING' })
  await delay(10)
  await app.close()
  await waiting
})

t.test('adapter failures: an answer gets internal, a timeout is still told to the asker, an announcement is logged', async (t) => {
  const adapter = faultyAdapter()
  const logs = logCapture('warn')
  const app = await buildApp(t, { adapter }, { fastify: logs.fastify })
  const client = await connectTest(app, { user: 'u' })
  await client.subscribe('user:u')
  // Every write of an outcome fails, from the start: the answer gets internal, and the timeout cannot be recorded.
  adapter.fail('stateTake', { message: 'take failed' })
  const gaveUp = t.rejects(app.realtime.ask('user:u', question('f1'), { timeout: 100 }), { code: 'FST_REALTIME_REQUEST_TIMEOUT' })
  const shown = await client.next('hitl_request')
  client.answer(shown, 'x')
  t.match(await client.next('error'), { id: shown.id, data: { code: 'internal' } })
  await gaveUp
  t.ok(
    logs.records().some((r) => r.msg === 'realtime question timeout could not be recorded'),
    'the asker gave up all the same'
  )
  adapter.heal()
  // Only the announcement of the outcome fails, not the event that records it.
  adapter.fail('publish', { message: 'publish failed', when: (_room, event) => !event.volatile && event.head.includes('hitl_resolved') })
  const quiet = app.realtime.ask('user:u', question('f2'))
  client.answer(await client.next('hitl_request'), 'y')
  t.equal(await quiet, 'y', 'recorded, so the asker has its answer')
  await until(() => logs.records().some((r) => r.msg === 'realtime question outcome recorded but not announced'))
})

t.test('the SDK lists open questions after a (re)connect and answers them with reply', async (t) => {
  const app = await buildApp(t)
  const lists: string[][] = []
  const tab1 = sdk(t, app, { token: sign('carol') })
  const tab2 = sdk(t, app, { token: sign('carol') })
  tab1.onQuestions((open) => lists.push(open.map((q) => (q.data as { requestId: string }).requestId)))
  tab1.subscribe('user:carol')
  tab2.subscribe('user:carol')
  await until(() => tab1.state === 'open' && tab2.state === 'open')
  await delay(30)
  const first = app.realtime.ask({ user: 'carol' }, question('s1'))
  const second = app.realtime.ask({ user: 'carol' }, question('s2'))
  await until(() => tab1.questions().length === 2 && tab2.questions().length === 2)
  const [q1, q2] = tab2.questions() as [ClientQuestion<AgentEvents>, ClientQuestion<AgentEvents>]
  t.match(q1, { room: 'user:carol', type: 'hitl_request', data: { requestId: 's1' } })
  if (q1.type === 'hitl_request') t.equal(q1.data.question, 'Publish the summary?', 'typed by the registry')
  await tab2.reply(q1.id, { optionId: 'yes' })
  t.same(await first, { optionId: 'yes' })
  await until(() => tab1.questions().length === 1)
  await t.rejects(tab1.reply(q1.id, 'late'), { code: 'unknown_request', message: `no open question "${q1.id}"` })

  // A third tab that connects now finds the open question in the list the server gives it.
  const tab3 = sdk(t, app, { token: sign('carol') })
  tab3.subscribe('user:carol')
  await until(() => tab3.questions().length === 1)
  t.equal(tab3.questions()[0]?.id, q2.id)
  const declined = t.rejects(second, { message: /dismissed: $/ })
  await tab3.decline(q2.id, 'dismissed')
  await declined
  await until(() => tab1.questions().length === 0 && tab2.questions().length === 0)
  t.same(lists.at(-1), [], 'the listener saw the list empty out')
  t.ok(lists.some((l) => l.length === 2))
})

t.test('the SDK: a late answer is already_answered and the question leaves the list; too large an answer fails here', async (t) => {
  const app = await buildApp(t, { limits: { maxPayload: 2048 } })
  const a = sdk(t, app, { token: sign('dan') })
  const b = sdk(t, app, { token: sign('dan'), reconnect: false })
  const sub = b.subscribe('user:dan')
  a.subscribe('user:dan')
  await until(() => a.state === 'open' && b.state === 'open')
  await delay(30)
  const asked = app.realtime.ask({ user: 'dan' }, question('d1'))
  await until(() => a.questions().length === 1 && b.questions().length === 1)
  const id = a.questions()[0]?.id as string
  await t.rejects(a.reply(id, 'x'.repeat(4096), { timeout: 5000 }), { code: 'too_large' })
  t.equal(a.questions().length, 1, 'still open after a refused answer')
  // b has not seen a's answer yet when it answers: the server tells it.
  const winner = a.reply(id, 'from a')
  const loser = b.reply(id, 'from b')
  await winner
  await t.rejects(loser, { code: 'already_answered' })
  t.equal(b.questions().length, 0)
  t.equal(await asked, 'from a')
  const other = app.realtime.ask({ user: 'dan' }, question('d2'))
  await until(() => b.questions().length === 1)
  let changes = 0
  b.onQuestions(() => changes++)
  sub.unsubscribe()
  t.equal(changes, 1, 'unsubscribing drops the questions of the room')
  t.same(b.questions(), [])
  const refused = t.rejects(other, { message: /no: not now/ })
  await a.decline(a.questions()[0]?.id as string, 'no', 'not now', { timeout: 5000 })
  await refused
})

const skip = requireRedis(t)

t.test('on Redis: asked on one instance, answered on another; both instances tell their clients', { skip }, async (t) => {
  const redis = await startRedis(t)
  const options = { adapter: undefined as never }
  const a = await buildApp(t, { ...options, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) })
  const b = await buildApp(t, { ...options, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) })
  const onA = await connectTest(a, { user: 'erin' })
  const onB = await connectTest(b, { user: 'erin' })
  await onA.subscribe('user:erin')
  await onB.subscribe('user:erin')
  const answer = a.realtime.ask({ user: 'erin' }, question('r1'), { idempotencyKey: 'r1' })
  const shown = await onB.next('hitl_request')
  t.equal((await onA.next('hitl_request')).id, shown.id)
  const joined = b.realtime.ask({ user: 'erin' }, question('r1'), { idempotencyKey: 'r1' })
  const late = await connectTest(b, { user: 'erin' })
  const listed = (await late.subscribe('user:erin')) as unknown as { questions: { id: string }[] }
  t.same(
    listed.questions.map((q) => q.id),
    [shown.id],
    'listed on the other instance'
  )
  onB.answer(shown, 'from b')
  t.same(await Promise.all([answer, joined]), ['from b', 'from b'], 'the askers on both instances get the answer')
  t.equal((await onA.next('hitl_resolved')).data.status, 'answered')
  onA.answer(shown, 'from a')
  t.equal((await onA.next('error')).data.code, 'already_answered')
})

t.test('every new frame conforms to the realtime.v1 schemas', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  // The helper's client checks each frame it receives against the protocol schemas and fails on the first that does not.
  const watcher = await connect(app, 'w')
  await watcher.subscribe('workflow:v')
  const stream = app.realtime.stream('workflow:v', { type: 'agent:thought', data: { runId: 'r', content: '' } }, { window: 0 })
  stream.append('abc')
  const asked = app.realtime.ask('workflow:v', question('v1'))
  const shown = await watcher.next('hitl_request')
  const late = await connect(app, 'l')
  const listed = await late.subscribe('workflow:v')
  t.match(listed.data, { streams: [{ id: stream.id, text: 'abc' }], questions: [{ id: shown.id }] })
  watcher.send({ type: 'reply', id: shown.id, room: 'workflow:v', data: 1 })
  t.equal(await asked, 1)
  await stream.end()
  for (const type of ['stream', 'delta', 'ack', 'hitl_resolved', 'agent:thought']) t.ok(await watcher.next(type), `${type} conforms`)
  t.ok(await late.next('hitl_resolved'))
  t.same(watcher.violations, [])
})
