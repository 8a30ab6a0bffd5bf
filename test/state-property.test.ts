// Property: whatever sequence of set() and patch() a state room goes through, and wherever its clients drop and
// resume (past the history too), every client ends holding the server's value. Bounded runs, real sockets.
import fc from 'fast-check'
import t from 'tap'
import WebSocket from 'ws'
import type { JsonPatchOperation } from '../src/index.js'
import { sdk, until } from './helpers/client.js'
import { buildApp, sign } from './helpers/index.js'

type Command =
  | { kind: 'set'; value: unknown }
  | { kind: 'patch'; op: 'add' | 'replace' | 'remove'; key: string; value: unknown }
  | { kind: 'drop'; client: number }

const key = fc.constantFrom('a', 'b', 'c', 'list', 'deep')
const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('set' as const), value: fc.jsonValue({ maxDepth: 3 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('patch' as const),
      op: fc.constantFrom('add' as const, 'replace' as const, 'remove' as const),
      key,
      value: fc.jsonValue({ maxDepth: 2 })
    })
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const), client: fc.integer({ min: 0, max: 2 }) }) }
)

const opOf = (c: Extract<Command, { kind: 'patch' }>): JsonPatchOperation =>
  c.op === 'remove' ? { op: 'remove', path: `/${c.key}` } : { op: c.op, path: `/${c.key}`, value: c.value }

t.test('random set/patch sequences with clients dropping and resuming: every client ends with the server’s value', async (t) => {
  // A short history, so some resumes are past it and come back with recovered: false.
  const app = await buildApp(t, { authorize: () => true, history: { size: 4 } })
  const sockets: WebSocket[] = []
  class Tracked extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols)
      sockets.push(this)
    }
  }
  let run = 0
  await fc.assert(
    fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), async (commands) => {
      const room = `prop:${run++}`
      const state = app.realtime.state(room)
      const clients = [0, 1, 2].map((i) => sdk(t, app, { token: sign(`u${i}`), WebSocket: Tracked as never }))
      const views = clients.map((c) => c.liveState(room, () => {}))
      try {
        await until(() => clients.every((c) => c.state === 'open'), 3000, 'clients open')
        for (const c of commands) {
          if (c.kind === 'drop') {
            sockets.filter((s) => s.readyState === WebSocket.OPEN)[c.client]?.terminate()
            continue
          }
          // A patch that does not fit the value is refused and changes nothing; either way the clients must follow.
          await (c.kind === 'set' ? state.set(c.value) : state.patch([opOf(c)])).catch((err: { code?: string }) => {
            if (err.code !== 'FST_REALTIME_INVALID_STATE') throw err
          })
        }
        const server = await state.get()
        const version = state.version
        await until(() => views.every((v) => v.version === version), 5000, `every client at version ${version}`)
        for (const view of views) if (JSON.stringify(view.value) !== JSON.stringify(server)) return false
        return true
      } finally {
        for (const c of clients) c.close()
      }
    }),
    { numRuns: 25, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) }
  )
  t.pass('every run converged')
})
