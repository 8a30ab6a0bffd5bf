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

t.test('a presence predicate that returns a promise is refused with internal, and its rejection goes nowhere', async (t) => {
  const log = logCapture()
  const app = await buildApp(
    t,
    { authorize: () => true, presence: (() => Promise.reject(new Error('async predicate'))) as never },
    { fastify: log.fastify }
  )
  const alice = await connect(app, 'alice')
  t.equal((await alice.call({ type: 'subscribe', id: 's', room: 'doc:1' })).data.code, 'internal', 'a subscribe fails as a whole')
  t.equal((await alice.call({ type: 'presence', id: 'p', room: 'doc:1' })).data.code, 'internal')
  t.equal((await alice.call({ type: 'ping', id: 'marker' })).type, 'pong', 'the connection lives')
  const failed = log.records().find((r) => r.msg === 'realtime presence predicate failed')
  t.match((failed?.err as { message?: string } | undefined)?.message, /it must answer synchronously/)
})

t.test('a presenceInfo that returns a rejected promise: present without info, and the rejection goes nowhere', async (t) => {
  const app = await buildApp(t, {
    authorize: () => true,
    presence: true,
    presenceInfo: (() => Promise.reject(new Error('no profile'))) as never
  })
  const alice = await connect(app, 'alice')
  t.equal((await alice.subscribe('doc:1')).type, 'subscribed')
  const reply = await alice.call({ type: 'presence', id: 'p', room: 'doc:1' })
  t.same(reply.data, { members: [{ user: 'alice', connections: 1 }] })
})

t.test('the hook wrapper maps every way a hook can go wrong to one logged failure, and never throws', async (t) => {
  const { callHook, callHookSync, detach, HookTimeoutError, settleHook } = await import('../src/server/hooks.js')
  // The wrapper's timer is unref'd (a hung hook must not hold a closing process); a server keeps the loop alive.
  const keepAlive = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(keepAlive))
  const errors: string[] = []
  const log = { error: (_o: unknown, msg: string) => errors.push(msg) } as unknown as import('fastify').FastifyBaseLogger
  const call = { log, message: 'hook failed', fields: {}, timeout: 50 }
  const failedWith = async (hook: () => unknown, extra = {}) => {
    const result = await callHook({ ...call, ...extra }, hook)
    return result.ok ? 'ok' : result.error instanceof Error ? result.error.name : 'other'
  }
  t.equal(await failedWith(() => 1), 'ok')
  t.equal(await failedWith(() => Promise.resolve(1)), 'ok')
  t.equal(await failedWith(() => Promise.reject(new Error('no'))), 'Error', 'a rejection')
  t.equal(await failedWith(() => new Promise(() => {})), 'HookTimeoutError', 'a promise that never settles')
  t.equal(await failedWith(() => 10n, { serialized: true }), 'TypeError', 'a BigInt where JSON is needed')
  const brokenThen = {
    // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
    then() {
      throw new Error('then throws')
    }
  }
  t.equal(await failedWith(() => brokenThen), 'Error', 'a thenable whose then throws')
  const fickle = {
    // biome-ignore lint/suspicious/noThenProperty: a hostile thenable is the point
    then(ok: (value: unknown) => void, fail: (error: unknown) => void) {
      ok(1)
      fail(new Error('second thoughts'))
      throw new Error('and a throw')
    }
  }
  const logged = errors.length
  t.equal(await failedWith(() => fickle), 'ok', 'a thenable that settles twice, then throws: its first word counts')
  t.equal(errors.length, logged, 'and nothing is logged')
  const trap = new Proxy(
    {},
    {
      get() {
        throw new Error('trap')
      }
    }
  )
  t.equal(await failedWith(() => trap), 'ok', 'a value whose properties throw is not taken for a promise (nor serialized)')
  const before = errors.length
  const expectedThrows = () => {
    throw new Error('expected() throws')
  }
  t.equal(await failedWith(() => Promise.reject(new Error('e')), { expected: expectedThrows }), 'Error')
  t.equal(errors.length, before + 1, 'an expected() that throws counts as unexpected: logged')
  const done = await settleHook(
    call,
    () => 1,
    () => {
      throw new Error('done throws')
    },
    () => 'failed'
  )
  t.equal(done, 'failed', 'a throw in done is a failure too')
  t.ok(new HookTimeoutError(5).message.includes('hookTimeout'))
  const sync = callHookSync({ log, message: 'sync failed', fields: {} }, () => Promise.resolve(1))
  t.equal(sync.ok, false, 'a synchronous hook that returns a promise fails')
  // The refused promise may still reject: the test runs with --unhandled-rejections=strict, which would end it.
  t.equal(callHookSync({ log, message: 'sync failed', fields: {} }, () => Promise.reject(new Error('late no'))).ok, false)
  t.equal(callHookSync({ log, message: 'sync failed', fields: {} }, () => brokenThen).ok, false, 'a thenable whose then throws')
  await new Promise((resolve) => setImmediate(resolve))
  const expectedSync = callHookSync({ log, message: 'sync expected', fields: {}, expected: () => true }, () => {
    throw new Error('meant')
  })
  t.equal(expectedSync.ok, false)
  t.notOk(errors.includes('sync expected'), 'an expected failure is not logged')
  detach(log, 'detached failed', {}, Promise.reject(new Error('late')))
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(errors.includes('detached failed'), 'detach logs what nobody awaited')
})

t.test('in process too: a throwing presence predicate and unreadable handler errors get one internal answer each', async (t) => {
  const { Type } = await import('../src/index.js')
  const app = await buildApp(t, {
    authorize: () => true,
    presence: (room) => {
      if (room.startsWith('x')) throw new Error('unknown room')
      return true
    }
  })
  const message = {
    toString() {
      throw new Error('no string')
    }
  }
  app.realtime.handle('unreadable', Type.Any(), () => {
    throw Object.assign(new Error('x'), { name: 'RealtimeError', code: 'quota', message })
  })
  const trap = new Proxy(
    {},
    {
      get() {
        throw new Error('trap')
      }
    }
  )
  app.realtime.handle('trap', Type.Any(), () => {
    throw trap
  })
  const alice = await connect(app, 'alice')
  t.equal((await alice.call({ type: 'presence', id: 'p', room: 'x1' })).data.code, 'internal')
  t.equal((await alice.call({ type: 'unreadable', id: 'u', data: {} })).data.code, 'internal')
  t.equal((await alice.call({ type: 'trap', id: 't', data: {} })).data.code, 'internal')
  t.equal((await alice.call({ type: 'ping', id: 'later' })).type, 'pong')
})
