// Property: whatever sequence of set() and patch() a state room goes through, and wherever its clients drop and
// resume (past the history too), every client ends holding the server's value. Bounded runs, real sockets.
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import jsonpatch from 'fast-json-patch'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { redisAdapter } from '../src/adapters/redis.js'
import type { JsonPatchOperation, StateHandle } from '../src/index.js'
import { applyJsonPatch } from '../src/protocol/json-patch.js'
import { sdk, until } from './helpers/client.js'
import { buildApp, sign } from './helpers/index.js'
import { redisUnavailable, startRedis } from './helpers/redis.js'

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

/**
 * Runs the property against `apps` (one, or several instances sharing an adapter): clients connect to the instances in
 * turn, and the commands write through the instances in turn.
 */
async function converges(t: Test, apps: FastifyInstance[], numRuns: number): Promise<void> {
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
      const handles = apps.map((app) => app.realtime.state(room))
      const clients = [0, 1, 2].map((i) =>
        sdk(t, apps[i % apps.length] as FastifyInstance, { token: sign(`u${i}`), WebSocket: Tracked as never })
      )
      const views = clients.map((c) => c.liveState(room, () => {}))
      try {
        await until(() => clients.every((c) => c.state === 'open'), 3000, 'clients open')
        for (const [i, c] of commands.entries()) {
          if (c.kind === 'drop') {
            sockets.filter((s) => s.readyState === WebSocket.OPEN)[c.client]?.terminate()
            continue
          }
          const state = handles[i % handles.length] as StateHandle
          // A patch that does not fit the value is refused and changes nothing; either way the clients must follow.
          await (c.kind === 'set' ? state.set(c.value) : state.patch([opOf(c)])).catch((err: { code?: string }) => {
            if (err.code !== 'FST_REALTIME_INVALID_STATE') throw err
          })
        }
        const server = await (handles[0] as StateHandle).get()
        const version = (handles[0] as StateHandle).version
        await until(() => views.every((v) => v.version === version), 5000, `every client at version ${version}`)
        // Equal as JSON values: the order of an object's keys is not part of its value.
        return views.every((view) => isDeepStrictEqual(view.value, server))
      } finally {
        for (const c of clients) c.close()
      }
    }),
    { numRuns, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) }
  )
}

t.test('random set/patch sequences with clients dropping and resuming: every client ends with the server’s value', async (t) => {
  // A short history, so some resumes are past it and come back with recovered: false.
  await converges(t, [await buildApp(t, { authorize: () => true, history: { size: 4 } })], 25)
  t.pass('every run converged')
})

t.test('the same on two instances sharing a real Redis, writing and serving in turn', { skip: redisUnavailable() }, async (t) => {
  const redis = await startRedis(t)
  const options = { authorize: () => true, history: { size: 4 } }
  const apps = [
    await buildApp(t, { ...options, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) }),
    await buildApp(t, { ...options, adapter: redisAdapter({ url: redis.url, keyPrefix: redis.prefix }) })
  ]
  await converges(t, apps, 10)
  t.pass('every run converged')
})

t.test('where the client applier applies a patch, it gives what the server applies (fast-json-patch)', async (t) => {
  const segment = fc.constantFrom('a', 'b', 'list', '0', '1', '-', 'deep')
  const pointer = fc.array(segment, { maxLength: 3 }).map((s) => (s.length === 0 ? '' : `/${s.join('/')}`))
  const operation: fc.Arbitrary<JsonPatchOperation> = fc.oneof(
    fc.record({
      op: fc.constantFrom('add' as const, 'replace' as const, 'test' as const),
      path: pointer,
      value: fc.jsonValue({ maxDepth: 2 })
    }),
    fc.record({ op: fc.constant('remove' as const), path: pointer }),
    fc.record({ op: fc.constantFrom('move' as const, 'copy' as const), path: pointer, from: pointer })
  )
  const doc = fc.dictionary(segment, fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.array(fc.integer(), { maxLength: 3 })))
  fc.assert(
    fc.property(doc, fc.array(operation, { minLength: 1, maxLength: 5 }), (value, ops) => {
      let server: unknown
      try {
        // As JSON: fast-json-patch turns a move of the root onto itself into a cyclic value, which no server can send.
        const copy = structuredClone(ops) as jsonpatch.Operation[] // fast-json-patch may share the ops' values
        server = JSON.parse(JSON.stringify(jsonpatch.applyPatch(structuredClone(value), copy, true, false).newDocument))
      } catch {
        server = undefined
      }
      let client: unknown
      try {
        client = JSON.parse(JSON.stringify(applyJsonPatch(value, ops)))
      } catch {
        client = undefined
      }
      // Where the client applies a patch it gets the server's value exactly. A refusal is always safe (the client
      // refetches the value); it refuses all the server refuses, and a few more fast-json-patch lets through (removing
      // the root, moving a missing member).
      if (client === undefined) return true
      return server !== undefined && isDeepStrictEqual(client, server)
    }),
    { numRuns: 2000, seed: Number(process.env.FC_SEED ?? Date.now() % 2 ** 31) }
  )
  t.pass('the applier matches the server')
})
