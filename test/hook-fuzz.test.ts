// The hook fuzzer: fast-check picks how every app hook behaves (fine, false, throwing, rejecting, never settling, a
// value JSON cannot hold, a value of the wrong type) and what real clients do meanwhile, against one server in a
// process of its own with Node's default handling of unhandled rejections (test/fixtures/fuzz-hooks-server.ts).
// Whatever the mix: the process never exits, a connect gets an HTTP answer, every request a client sent gets exactly
// one answer (unless its connection closed first), and once everyone left, stats() is back to zero.
import fc from 'fast-check'
import t from 'tap'
import WebSocket from 'ws'
import { startChild } from './helpers/child.js'

const server = await startChild(t, 'fuzz-hooks-server.ts')
const HOOK_TIMEOUT = 200

const misbehaving = ['f', 't', 'r', 'h', 'b', 'u'] as const
/** A hook's mode: fine half the time. */
const mode = fc.oneof({ weight: 6, arbitrary: fc.constant('o') }, { weight: 6, arbitrary: fc.constantFrom(...misbehaving) })
/** The user's hooks are fine more often, so that most connections open and their rooms' hooks get called. */
const userMode = fc.oneof({ weight: 12, arbitrary: fc.constant('o') }, { weight: 6, arbitrary: fc.constantFrom(...misbehaving) })
const roomName = fc
  .tuple(mode, mode, mode, fc.constantFrom('o', 'o', 't', 'u'), fc.integer({ min: 0, max: 2 }))
  .map((m) => `f:${m.slice(0, 4).join('')}:${m[4]}`)

type Action =
  | { kind: 'subscribe' | 'unsubscribe' | 'presence'; room: string }
  | { kind: 'send'; mode: string }
  | { kind: 'ping' }
  | { kind: 'close' }

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 4, arbitrary: roomName.map((room) => ({ kind: 'subscribe' as const, room })) },
  { weight: 2, arbitrary: roomName.map((room) => ({ kind: 'unsubscribe' as const, room })) },
  { weight: 2, arbitrary: roomName.map((room) => ({ kind: 'presence' as const, room })) },
  { weight: 3, arbitrary: fc.constantFrom('o', 't', 'r', 'h', 'b', 'u', 'e').map((m) => ({ kind: 'send' as const, mode: m })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'ping' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) }
)
const user = fc.tuple(userMode, userMode, mode).map((m) => m.join(''))
const session = fc.record({ user, actions: fc.array(action, { minLength: 1, maxLength: 8 }) })

interface Outcome {
  /** The HTTP status of a refused upgrade; undefined when it opened. */
  refused?: number
  /** Answers received per request id. */
  answers: Map<string, number>
  /** Request ids sent. */
  sent: string[]
  /** Whether the connection closed before every answer came (the client's own close, or the server's). */
  closed: boolean
}

/** Opens a connection as `sub`, plays `actions`, waits for every answer (or the close), then closes. */
async function play(sub: string, actions: Action[], run: number, index: number): Promise<Outcome> {
  const outcome: Outcome = { answers: new Map(), sent: [], closed: false }
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/ws`, 'realtime.v1', { headers: { 'x-fuzz-user': `${sub}-${run}${index}` } })
  const ended = new Promise<void>((resolve) => ws.once('close', () => resolve()))
  const opened = await new Promise<boolean>((resolve) => {
    ws.once('unexpected-response', (_req, res) => {
      outcome.refused = res.statusCode
      res.resume()
      resolve(false)
    })
    ws.once('error', () => resolve(false))
    ws.on('message', (raw) => {
      const frame = JSON.parse(String(raw)) as { type: string; id?: string }
      if (frame.type === 'ready') resolve(true)
      if (frame.id !== undefined && frame.type !== 'request') outcome.answers.set(frame.id, (outcome.answers.get(frame.id) ?? 0) + 1)
    })
  })
  if (!opened) {
    outcome.closed = true
    return outcome
  }
  ws.once('close', () => {
    outcome.closed = true
  })
  for (const [n, a] of actions.entries()) {
    if (ws.readyState !== WebSocket.OPEN) break
    if (a.kind === 'close') {
      ws.close()
      break
    }
    const id = String(n)
    outcome.sent.push(id)
    if (a.kind === 'send') ws.send(JSON.stringify({ type: 'fz', id, data: { mode: a.mode } }))
    else if (a.kind === 'ping') ws.send(JSON.stringify({ type: 'ping', id }))
    else ws.send(JSON.stringify({ type: a.kind, id, room: a.room }))
  }
  // Every hook settles within hookTimeout: past it, everything must have been answered.
  const deadline = Date.now() + 3 * HOOK_TIMEOUT + 2000
  while (!outcome.closed && outcome.sent.some((id) => !outcome.answers.has(id)) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10))
  }
  // A marker after the answers: any second answer to an earlier request would have come before its pong.
  if (!outcome.closed) {
    ws.send(JSON.stringify({ type: 'ping', id: 'marker' }))
    while (!outcome.closed && !outcome.answers.has('marker') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  }
  ws.close()
  await ended
  return outcome
}

async function stats(): Promise<{ connections: number; subscriptions: number; pendingRequests: number }> {
  return (await fetch(`http://127.0.0.1:${server.port}/stats`)).json() as never
}

t.test('random misbehaving hooks under random clients: the process lives, one answer per request, nothing left', async (t) => {
  let run = 0
  const refusals = new Map<number, number>()
  let requests = 0
  await fc.assert(
    fc.asyncProperty(fc.array(session, { minLength: 1, maxLength: 3 }), async (sessions) => {
      const r = run++
      const outcomes = await Promise.all(sessions.map((s, i) => play(s.user, s.actions, r, i)))
      for (const o of outcomes) {
        if (o.refused !== undefined) refusals.set(o.refused, (refusals.get(o.refused) ?? 0) + 1)
        // A connection that closed may leave requests unanswered, never answer one twice.
        for (const [id, count] of o.answers) if (count !== 1) throw new Error(`request ${id} answered ${count} times`)
        if (!o.closed || o.answers.has('marker')) {
          const missing = o.sent.filter((id) => !o.answers.has(id))
          if (missing.length > 0) throw new Error(`requests ${missing.join(', ')} got no answer`)
        }
        requests += o.sent.length
      }
      if (!server.alive()) throw new Error('the server process exited')
      // Once everyone left, nothing is left behind.
      const deadline = Date.now() + 3 * HOOK_TIMEOUT + 2000
      let s = await stats()
      while ((s.connections !== 0 || s.subscriptions !== 0 || s.pendingRequests !== 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20))
        s = await stats()
      }
      if (s.connections !== 0 || s.subscriptions !== 0 || s.pendingRequests !== 0) throw new Error(`left behind: ${JSON.stringify(s)}`)
    }),
    { numRuns: 100, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) }
  )
  t.ok(server.alive(), 'the process is still running')
  t.ok(requests > 0, `${requests} requests, each answered once`)
  t.ok(refusals.size > 0, `refused upgrades by status: ${JSON.stringify(Object.fromEntries(refusals))}`)
  // Each failure is logged, at error level, with a message of its own (and the hook's error under `err`).
  const messages = [...new Set(server.logs.filter((r) => r.level >= 50).map((r) => String(r.msg)))]
  t.ok(messages.length >= 5, `failures logged as: ${messages.join('; ')}`)
})
