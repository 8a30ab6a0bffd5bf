// The connection caps hold when verification is asynchronous: each upgrade reserves its place before the first
// await and gives it back if it fails, so upgrades that wait together never open more than the cap.
import t from 'tap'
import WebSocket from 'ws'
import { buildApp, delay, latch, wsUrl } from './helpers/index.js'
import { baseUrl, streamApp } from './helpers/sse.js'

/** Opens `n` upgrades at once as the users `userOf(i)`; resolves with how many opened and the refusal statuses. */
async function storm(url: string, n: number, userOf: (i: number) => string) {
  const outcomes = await Promise.all(
    Array.from(
      { length: n },
      (_, i) =>
        new Promise<{ ws?: WebSocket; status?: number }>((resolve) => {
          const ws = new WebSocket(url, { headers: { 'x-user': userOf(i) } })
          ws.once('open', () => resolve({ ws }))
          ws.once('unexpected-response', (_req, res) => {
            res.resume()
            resolve({ status: res.statusCode })
          })
          ws.once('error', () => resolve({ status: 0 }))
        })
    )
  )
  const open = outcomes.flatMap((o) => (o.ws === undefined ? [] : [o.ws]))
  const statuses = outcomes.flatMap((o) => (o.status === undefined ? [] : [o.status]))
  return { open, statuses }
}

/** An `authenticate` that takes a while, as a JWKS lookup or a session store would. */
const slowAuthenticate = async (request: { headers: Record<string, unknown> }) => {
  await delay(20 + Math.floor(Math.random() * 60))
  return { sub: String(request.headers['x-user']) }
}

t.test('200 concurrent upgrades with a slow asynchronous verifier open exactly limits.connections', async (t) => {
  const app = await buildApp(t, { authenticate: slowAuthenticate, limits: { connections: 50 } })
  const { open, statuses } = await storm(wsUrl(app), 200, (i) => `user${i}`)
  t.teardown(() => {
    for (const ws of open) ws.terminate()
  })
  t.equal(open.length, 50, 'exactly the cap')
  t.same(new Set(statuses), new Set([503]), 'every other one is told the server is full')
  t.equal(app.realtime.stats().connections, 50)
  for (const ws of open.splice(0, 10)) ws.close()
  await new Promise<void>((resolve) => {
    const check = () => (app.realtime.stats().connections === 40 ? resolve() : setTimeout(check, 10))
    check()
  })
  const again = await storm(wsUrl(app), 30, (i) => `late${i}`)
  t.teardown(() => {
    for (const ws of again.open) ws.terminate()
  })
  t.equal(again.open.length, 10, 'the places of closed connections and failed upgrades are given back')
})

t.test('concurrent upgrades of one user open exactly limits.connectionsPerUser, refused ones give their place back', async (t) => {
  const app = await buildApp(t, { authenticate: slowAuthenticate, limits: { connectionsPerUser: 5, connections: 70 } })
  const { open, statuses } = await storm(wsUrl(app), 60, () => 'same')
  t.teardown(() => {
    for (const ws of open) ws.terminate()
  })
  t.equal(open.length, 5, 'exactly the per-user cap')
  t.same(new Set(statuses), new Set([429]))
  const others = await storm(wsUrl(app), 65, (i) => `other${i}`)
  t.teardown(() => {
    for (const ws of others.open) ws.terminate()
  })
  t.equal(others.open.length, 65, 'the refused upgrades of that user hold no place under the global cap')
})

t.test('WebSocket upgrades and SSE streams share one set of caps: streams still verifying hold their places', async (t) => {
  // Streams of `sse*` users wait in their verification until released; every other user is verified at once.
  const gate = latch()
  let waiting = 0
  const allWaiting = latch()
  const authenticate = async (request: { headers: Record<string, unknown> }) => {
    const user = String(request.headers['x-user'])
    if (user.startsWith('sse')) {
      if (++waiting === 30) allWaiting.open()
      await gate.done
    }
    return { sub: user }
  }
  const app = await streamApp(t, { authenticate, limits: { connections: 40, connectionsPerUser: 3 } })
  const aborts: AbortController[] = []
  t.teardown(() => {
    for (const abort of aborts) abort.abort()
  })
  const stream = async (user: string): Promise<number> => {
    const abort = new AbortController()
    aborts.push(abort)
    const res = await fetch(`${baseUrl(app)}/sse`, { headers: { 'x-user': user }, signal: abort.signal })
    if (res.status !== 200) await res.body?.cancel()
    return res.status
  }
  const streams = Promise.all(Array.from({ length: 30 }, (_, i) => stream(`sse${i}`)))
  await allWaiting.done
  const ws = await storm(wsUrl(app), 30, (i) => `ws${i}`)
  t.teardown(() => {
    for (const socket of ws.open) socket.terminate()
  })
  t.equal(ws.open.length, 10, 'the upgrades get only the places the waiting streams left')
  t.same(new Set(ws.statuses), new Set([503]))
  gate.open()
  t.same(new Set(await streams), new Set([200]), 'every waiting stream opens')
  t.same(app.realtime.stats().transports, { websocket: 10, sse: 30 })

  gate.open()
})

t.test('one user’s WebSocket upgrades and SSE streams together open exactly limits.connectionsPerUser', async (t) => {
  const app = await streamApp(t, { authenticate: slowAuthenticate, limits: { connectionsPerUser: 3 } })
  const aborts: AbortController[] = []
  t.teardown(() => {
    for (const abort of aborts) abort.abort()
  })
  const stream = async (): Promise<number> => {
    const abort = new AbortController()
    aborts.push(abort)
    const res = await fetch(`${baseUrl(app)}/sse`, { headers: { 'x-user': 'sam' }, signal: abort.signal })
    if (res.status !== 200) await res.body?.cancel()
    return res.status
  }
  const [ws, ...streams] = await Promise.all([storm(wsUrl(app), 6, () => 'sam'), ...Array.from({ length: 6 }, stream)])
  t.teardown(() => {
    for (const socket of ws.open) socket.terminate()
  })
  const opened = streams.filter((s) => s === 200).length
  t.equal(ws.open.length + opened, 3, `exactly the cap between them (${ws.open.length} WebSocket, ${opened} SSE)`)
  t.same(new Set([...ws.statuses, ...streams.filter((s) => s !== 200)]), new Set([429]))
})
