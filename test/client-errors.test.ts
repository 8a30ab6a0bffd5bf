// The client's failures as an application sees them: onError with a typed reason, close codes on state changes,
// refusals that stop the retrying, and the spread of the first reconnect.
import t from 'tap'
import type { ConnectionError } from '../src/client/index.js'
import { sdk, until } from './helpers/client.js'
import { buildApp, sign } from './helpers/index.js'

/** Counts the upgrade attempts the app sees. */
function countUpgrades(
  app: { addHook: (name: 'onRequest', hook: (req: { headers: Record<string, unknown> }) => Promise<void>) => unknown },
  seen: { upgrades: number }
): void {
  app.addHook('onRequest', async (req) => {
    if (req.headers.upgrade !== undefined) seen.upgrades++
  })
}

t.test('a refused token stops the retrying: onError reports the 401 with its message, and the state ends closed', async (t) => {
  const seen = { upgrades: 0 }
  const app = await buildApp(t, {}, { before: (a) => countUpgrades(a as never, seen) })
  const errors: ConnectionError[] = []
  const states: string[] = []
  const client = sdk(t, app, { token: sign('alice', { exp: 1 }), onError: (e) => errors.push(e) })
  client.onStateChange((s, _p, close) => states.push(`${s} ${close?.code ?? ''}`.trim()))
  await until(() => client.state === 'closed', 5000, 'the client to give up')
  t.equal(seen.upgrades, 2, 'two upgrades, then the plain request found out why, and no more')
  t.equal(errors.length, 1)
  t.match(errors[0], {
    kind: 'refused',
    status: 401,
    retrying: false,
    reason: /expired/i,
    body: { statusCode: 401, code: 'FST_REALTIME_UNAUTHORIZED' }
  })
  t.same(states, ['reconnecting 1006', 'closed 1006'], 'the state changes carry the close code')
})

t.test('close() while the client asks the endpoint why its upgrades fail: it stays closed and reports no refusal', async (t) => {
  const app = await buildApp(t)
  // The plain request that asks why goes through fetch; its answer is held until the client has been closed.
  const saved = globalThis.fetch
  t.teardown(() => {
    globalThis.fetch = saved
  })
  let holding!: () => void
  const answerHeld = new Promise<void>((resolve) => {
    holding = resolve
  })
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const res = await saved(input, init)
    const body = await res.text()
    holding()
    await released
    return new Response(body, { status: res.status, headers: res.headers })
  }) as typeof fetch
  const errors: ConnectionError[] = []
  const states: string[] = []
  // No token: refused with 401 at each upgrade, and the plain request needs no second try with the token.
  const client = sdk(t, app, { onError: (e) => errors.push(e) })
  client.onStateChange((s, _p, close) => states.push(`${s} ${close?.code ?? ''}`.trim()))
  await answerHeld
  client.close()
  release()
  // The held answer is read from memory: the client is done with it once the pending callbacks have run.
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(client.state, 'closed')
  t.same(errors, [], 'the refusal that came after close() is not reported')
  t.same(states, ['reconnecting 1006', 'closed'])
})

t.test('an endpoint that answers nothing is reported unreachable, and the client keeps trying', async (t) => {
  const app = await buildApp(t)
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`
  await app.close()
  const errors: ConnectionError[] = []
  const client = sdk(t, url, { token: sign('alice'), onError: (e) => errors.push(e) })
  await until(() => errors.length === 1, 5000, 'the report')
  t.match(errors[0], { kind: 'unreachable', status: undefined, retrying: true, reason: 'no answer from the endpoint' })
  t.equal(client.state, 'reconnecting')
})

t.test('closes by the server reach onError with their kind, and state changes with code and reason', async (t) => {
  const app = await buildApp(t)
  const errors: ConnectionError[] = []
  const closes: unknown[] = []
  const client = sdk(t, app, { token: sign('alice') })
  const off = client.onError((e) => errors.push(e))
  client.onStateChange((state, _previous, close) => closes.push({ state, ...close }))
  const cases: Array<[number, string, ConnectionError['kind']]> = [
    [1012, 'restarting', 'going_away'],
    [4001, 'token expired', 'auth_expired'],
    [4029, 'rate limit exceeded', 'rate_limited'],
    [1008, 'too many invalid messages', 'protocol']
  ]
  for (const [code, reason, kind] of cases) {
    await until(() => client.state === 'open')
    app.realtime.connection(client.connectionId as string)?.close(code, reason)
    await until(() => errors.length > 0 && errors.at(-1)?.code === code, 5000, `the report of ${code}`)
    t.match(errors.at(-1), { kind, code, reason, retrying: code !== 1008 })
  }
  t.match(closes, [
    { state: 'open' },
    { state: 'reconnecting', code: 1012, reason: 'restarting' },
    { state: 'open' },
    { state: 'reconnecting', code: 4001, reason: 'token expired' },
    { state: 'open' },
    { state: 'reconnecting', code: 4029 },
    { state: 'open' },
    { state: 'closed', code: 1008, reason: 'too many invalid messages' }
  ])
  off()
})

t.test('a revoked connection (4500-4999) is reported as revoked and not retried', async (t) => {
  const app = await buildApp(t)
  const errors: ConnectionError[] = []
  const client = sdk(t, app, { token: sign('alice'), onError: (e) => errors.push(e) })
  await until(() => client.state === 'open')
  app.realtime.connection(client.connectionId as string)?.close(4503, 'banned')
  await until(() => client.state === 'closed')
  t.match(errors, [{ kind: 'revoked', code: 4503, reason: 'banned', retrying: false }])
})

t.test('a token function that throws is reported with what it threw; a throwing onError listener does not stop the client', async (t) => {
  const app = await buildApp(t)
  const errors: ConnectionError[] = []
  const handlerErrors: unknown[] = []
  let calls = 0
  const client = sdk(t, app, {
    token: () => {
      if (++calls === 1) throw new Error('refresh endpoint down')
      if (calls === 2) throw 'HTTP 503 from /token'
      return sign('alice')
    },
    onHandlerError: (e) => handlerErrors.push(e),
    onError: (e) => {
      errors.push(e)
      throw new Error('listener bug')
    }
  })
  await until(() => client.state === 'open')
  t.match(errors, [
    { kind: 'token', reason: 'refresh endpoint down', retrying: true, cause: { message: 'refresh endpoint down' } },
    { kind: 'token', reason: 'HTTP 503 from /token', retrying: true, cause: 'HTTP 503 from /token' }
  ])
  t.match(handlerErrors, [{ message: 'listener bug' }, { message: 'listener bug' }])
})

t.test('the first reconnect waits a random share of the spread window; later ones back off', async (t) => {
  const app = await buildApp(t)
  const client = sdk(t, app, { token: sign('alice'), reconnect: { spread: 300, initialDelay: 10 }, random: () => 0.999 })
  await until(() => client.state === 'open')
  const lostAt = Date.now()
  app.realtime.connection(client.connectionId as string)?.close(1012)
  await until(() => client.state === 'reconnecting')
  await until(() => client.state === 'open', 5000)
  t.ok(Date.now() - lostAt >= 290, `reconnected after ${Date.now() - lostAt} ms, at the end of the 300 ms window`)
})

t.test('without reconnect, a close is reported as not retrying', async (t) => {
  const app = await buildApp(t)
  const errors: ConnectionError[] = []
  const client = sdk(t, app, { token: sign('alice'), reconnect: false, onError: (e) => errors.push(e) })
  await until(() => client.state === 'open')
  app.realtime.connection(client.connectionId as string)?.close(1012, 'restarting')
  await until(() => client.state === 'closed')
  t.match(errors, [{ kind: 'going_away', retrying: false }])
})
