// The connection caps hold when verification is asynchronous: each upgrade reserves its place before the first
// await and gives it back if it fails, so upgrades that wait together never open more than the cap.
import t from 'tap'
import WebSocket from 'ws'
import { buildApp, delay, wsUrl } from './helpers/index.js'

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
