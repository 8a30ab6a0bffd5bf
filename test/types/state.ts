// State rooms: a schema types the handle; without one the value type is the caller's; the client's liveState too.
import Fastify from 'fastify'
import WebSocket from 'ws'
import { createClient, type LiveState } from '../../src/client/index.js'
import realtime, { type StateChange, type StateHandle, Type } from '../../src/index.js'

const app = Fastify()
await app.register(realtime, { jwt: { secret: 'x'.repeat(32) } })

const Plan = Type.Object({ steps: Type.Array(Type.Object({ id: Type.String(), done: Type.Boolean() })) })
const plan = app.realtime.state('plan:1', { schema: Plan, ttl: 60_000 })
const value: { steps: { id: string; done: boolean }[] } | undefined = await plan.get()
const change: StateChange = await plan.set({ steps: [{ id: 'a', done: false }] })
const version: number = change.version + plan.version
await plan.patch([{ op: 'replace', path: '/steps/0/done', value: true }])
// @ts-expect-error the schema says done is a boolean
await plan.set({ steps: [{ id: 'a', done: 'yes' }] })
// @ts-expect-error not an RFC 6902 operation
await plan.patch([{ op: 'merge', path: '/steps' }])
// @ts-expect-error version is read-only
plan.version = 3

const loose: StateHandle<{ count: number }> = app.realtime.state<{ count: number }>('counter')
await loose.set({ count: 1 })
// @ts-expect-error the caller's type says count is a number
await loose.set({ count: '1' })

const client = createClient({ url: 'ws://127.0.0.1:1/ws', WebSocket: WebSocket as never })
const live: LiveState<{ count: number }> = client.liveState<{ count: number }>('counter', (next, ops) => {
  const count: number | undefined = next?.count
  const first: string | undefined = ops?.[0]?.path
  void [count, first]
})
const current: number | undefined = live.value?.count
// @ts-expect-error the value may be undefined until it arrives
const sure: number = live.value.count
live.unsubscribe()
void [value, version, current, sure]
