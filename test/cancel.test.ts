// Cancellation: a client's `cancel {room, data: {runId}}`, allowed by authorize, aborts the run's AbortSignal.
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import WebSocket from 'ws'
import { memoryAdapter } from '../src/adapters/memory.js'
import { redisAdapter } from '../src/adapters/redis.js'
import { createClient } from '../src/client/index.js'
import { type AuthorizeContext, Type } from '../src/index.js'
import { Control } from '../src/server/control.js'
import { connectTest } from '../src/testing.js'
import { faultyAdapter } from './helpers/faulty-adapter.js'
import { buildApp, logCapture, sign, wsUrl } from './helpers/index.js'
import { requireRedis, startRedis } from './helpers/redis.js'

/** Registers `run:start`, whose run waits for its signal and reports why it stopped as an agent:error event. */
function agentApp(app: FastifyInstance): { finished: Promise<unknown>[] } {
  const finished: Promise<unknown>[] = []
  app.realtime.handle('run:start', Type.Object({ runId: Type.String() }), ({ data }) => {
    const room = `workflow:${data.runId}`
    const run = app.realtime.run({ room, runId: data.runId }, async (signal) => {
      await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
      const reason = signal.reason as Error & { code: string }
      await app.realtime.emit(room, {
        type: 'agent:error',
        data: { runId: data.runId, code: reason.code, message: reason.message, retryable: false }
      })
      return 'stopped'
    })
    finished.push(run)
    return { room }
  })
  return { finished }
}

t.test('a client cancel reaches the run as an aborted signal; the ack follows', async (t) => {
  const asked: AuthorizeContext[] = []
  const app = await buildApp(t, {
    authorize: (ctx) => {
      asked.push(ctx)
      return ctx.room.startsWith('workflow:')
    }
  })
  const { finished } = agentApp(app)
  const alice = await connectTest(app, { user: 'alice' })
  const { room } = await alice.send<'run:start', { room: string }>('run:start', { runId: 'r1' })
  await alice.subscribe(room)
  await alice.cancel(room, 'r1')
  const stopped = await alice.next('agent:error')
  t.same(stopped.data, {
    runId: 'r1',
    code: 'FST_REALTIME_RUN_CANCELLED',
    message: 'fastify-realtime: run r1 of "workflow:r1" was cancelled by user alice',
    retryable: false
  })
  t.equal(await finished[0], 'stopped', 'run() resolves as the run does')
  t.match(asked.at(-1), { room: 'workflow:r1', action: 'cancel', runId: 'r1', user: { sub: 'alice' } })
  alice.raw({ type: 'cancel', id: 'raw', room, data: { runId: 'r1' } })
  t.same(await alice.next('ack'), { type: 'ack', id: 'raw', data: { runId: 'r1' } }, 'a run no longer running: still passed on')
  alice.raw({ type: 'cancel', room, data: { runId: 'r1' } })
  alice.raw({ type: 'ping', id: 'after' })
  t.same(await alice.next(), { type: 'pong', id: 'after' }, 'a cancel without an id gets no ack')
})

t.test('authorize decides: a denied or throwing authorize is forbidden, and the run goes on', async (t) => {
  const logs = logCapture()
  const app = await buildApp(
    t,
    {
      authorize: ({ action, room }) => {
        if (room === 'workflow:boom') throw new Error('lookup failed')
        return action === 'subscribe'
      }
    },
    { fastify: logs.fastify }
  )
  let aborted = false
  let release: () => void = () => {}
  const running = app.realtime.run({ room: 'workflow:x', runId: 'x' }, (signal) => {
    signal.addEventListener('abort', () => {
      aborted = true
    })
    return new Promise<void>((resolve) => {
      release = resolve
    })
  })
  const eve = await connectTest(app, { user: 'eve' })
  await t.rejects(eve.cancel('workflow:x', 'x'), { code: 'forbidden', message: 'not allowed to cancel runs of "workflow:x"' })
  await t.rejects(eve.cancel('workflow:boom', 'x'), { code: 'forbidden' })
  t.ok(logs.records().some((r) => r.msg === 'realtime authorize failed; cancel denied'))
  t.equal(aborted, false)
  release()
  await running
})

t.test('the application cancels too; only the run of that room and id is aborted, every copy of it', async (t) => {
  const app = await buildApp(t)
  const reasons: string[] = []
  const started = (room: string, runId: string) =>
    app.realtime.run(
      { room, runId },
      (signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => resolve(reasons.push(`${room}/${runId}: ${signal.reason.message}`)))
        )
    )
  const twice = [started('workflow:a', 'r'), started('workflow:a', 'r')]
  const others = [started('workflow:b', 'r'), started('workflow:a', 'other')]
  await app.realtime.cancel({ room: 'workflow:a', runId: 'r' })
  await Promise.all(twice)
  t.same(reasons, [
    'workflow:a/r: fastify-realtime: run r of "workflow:a" was cancelled by the application',
    'workflow:a/r: fastify-realtime: run r of "workflow:a" was cancelled by the application'
  ])
  await app.realtime.cancel({ room: 'workflow:b', runId: 'r' })
  await app.realtime.cancel({ room: 'workflow:a', runId: 'other' })
  await Promise.all(others)
  t.equal(reasons.length, 4)
  t.equal(await app.realtime.run({ room: 'workflow:a', runId: 'quick' }, () => 42), 42, 'a run that ends by itself')
  await t.rejects(
    app.realtime.run({ room: 'workflow:a', runId: 'failing' }, () => {
      throw new Error('the run failed')
    }),
    { message: 'the run failed' }
  )
})

t.test('bad targets and bad cancel messages are refused', async (t) => {
  const app = await buildApp(t)
  const run = app.realtime.run as (target: unknown, fn: () => void) => Promise<void>
  await t.rejects(
    run(undefined, () => {}),
    { code: 'FST_REALTIME_INVALID_EVENT', message: /invalid room name "undefined"/ }
  )
  await t.rejects(
    run({ room: 'ok', runId: '' }, () => {}),
    { message: /a run id must be a string of 1 to 256 characters/ }
  )
  await t.rejects(app.realtime.cancel({ room: 'not a room', runId: 'r' }), { code: 'FST_REALTIME_INVALID_EVENT' })
  await t.rejects(app.realtime.cancel({ room: 'ok', runId: 'x'.repeat(257) }), { code: 'FST_REALTIME_INVALID_EVENT' })
  const client = await connectTest(app)
  client.raw({ type: 'cancel', id: 'c1', data: { runId: 'r' } })
  t.match(await client.next('error'), { id: 'c1', data: { code: 'invalid_room' } })
  client.raw({ type: 'cancel', id: 'c2', room: 'user:test-user' })
  t.match(await client.next('error'), { id: 'c2', data: { code: 'invalid_message', message: /invalid "cancel" message at \/data/ } })
  client.raw({ type: 'cancel', id: 'c3', room: 'user:test-user', data: { runId: 'r', force: true } })
  t.match(await client.next('error'), { id: 'c3', data: { code: 'invalid_message', message: /\/data\/force/ } })
})

t.test('a cancel the adapter cannot pass on: the client gets internal, the application a clear error', async (t) => {
  const adapter = faultyAdapter()
  const app = await buildApp(t, { adapter })
  const client = await connectTest(app, { user: 'u' })
  adapter.fail('publish', { message: 'link down' })
  await t.rejects(client.cancel('user:u', 'r'), { code: 'internal' })
  await t.rejects(app.realtime.cancel({ room: 'user:u', runId: 'r' }), {
    code: 'FST_REALTIME_ADAPTER_FAILED',
    message: 'fastify-realtime: the control adapter failed: Error: link down'
  })
})

t.test('the SDK cancels with client.cancel(room, runId)', async (t) => {
  const app = await buildApp(t, { authorize: ({ room }) => room.startsWith('workflow:') })
  const { finished } = agentApp(app)
  const client = createClient({ url: wsUrl(app), token: sign('alice'), WebSocket: WebSocket as never, reconnect: false })
  t.teardown(() => client.close())
  const { room } = await client.send<'run:start', { room: string }>('run:start', { runId: 'sdk' })
  await client.cancel(room, 'sdk')
  t.equal(await finished[0], 'stopped')
  await t.rejects(client.cancel('elsewhere', 'sdk', { timeout: 2000 }), { code: 'forbidden' })
})

t.test('signals that are not JSON, or of no known kind, are ignored', async (t) => {
  const warnings: string[] = []
  const log = { warn: (_obj: unknown, msg: string) => warnings.push(msg) }
  const control = new Control(memoryAdapter(), log as never)
  control.receive(Buffer.from('not json'))
  control.receive(Buffer.from('{"kind":"unknown"}'))
  t.same(warnings, ['realtime control signal is not JSON; ignored'])
})

const skip = requireRedis(t)

t.test('on Redis: a client on one instance cancels a run on another', { skip }, async (t) => {
  const redis = await startRedis(t)
  const options = { authorize: () => true, adapter: undefined as never }
  const a = await buildApp(t, { ...options, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) })
  const b = await buildApp(t, { ...options, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) })
  let reason = ''
  const running = a.realtime.run(
    { room: 'workflow:far', runId: 'far' },
    (signal) =>
      new Promise<void>((resolve) =>
        signal.addEventListener('abort', () => {
          reason = signal.reason.message
          resolve()
        })
      )
  )
  const bob = await connectTest(b, { user: 'bob' })
  await bob.cancel('workflow:far', 'far')
  await running
  t.equal(reason, 'fastify-realtime: run far of "workflow:far" was cancelled by user bob')
})
