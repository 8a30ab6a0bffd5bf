// The SDK's state rooms: client.liveState(room, onChange) against a real server, and against a scripted one for
// what a correct server never sends on its own (a patch that skips a version, one that does not apply).
import t, { type Test } from 'tap'
import type WebSocket from 'ws'
import { scriptedServer, sdk, until } from './helpers/client.js'
import { buildApp, sign } from './helpers/index.js'

type Change = [unknown, readonly unknown[] | undefined]

t.test('liveState() gives the value, a new object per change, and the patch that made it', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state<{ nodes: Record<string, string> }>('graph')
  await state.set({ nodes: { a: 'pending', b: 'pending' } })
  const client = sdk(t, app, { token: sign('alice') })
  const changes: Change[] = []
  const live = client.liveState<{ nodes: Record<string, string> }>('graph', (value, ops) => changes.push([value, ops]))
  t.equal(live.value, undefined, 'nothing before subscribed')
  t.equal(live.version, 0)
  await until(() => changes.length === 1, 3000, 'the value')
  t.same(changes[0], [{ nodes: { a: 'pending', b: 'pending' } }, undefined], 'the value came whole')
  await state.patch([{ op: 'replace', path: '/nodes/a', value: 'done' }])
  await until(() => changes.length === 2, 3000, 'the change')
  const [before, after] = changes.map(([value]) => value) as Array<{ nodes: Record<string, string> }>
  t.same(changes[1]?.[1], [{ op: 'replace', path: '/nodes/a', value: 'done' }])
  t.not(after, before, 'a new object')
  t.equal(before?.nodes.a, 'pending', 'the old value is left as it was')
  t.same(live.value, await state.get(), "equal to the server's")
  t.equal(live.version, 2)
  live.unsubscribe()
  live.unsubscribe()
  await state.set({ nodes: {} })
  // A later subscription of the room: its value arrives, with no call to the listener that left.
  const again = client.liveState('graph', () => {})
  await until(() => again.version === 3, 3000, 'the value again')
  t.equal(changes.length, 2, 'the listener that left was not called')
})

t.test('liveState() on a room the client holds adds a listener, called at once, and leaves the room to its owner', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const state = app.realtime.state('shared')
  await state.set({ n: 1 })
  const client = sdk(t, app, { token: sign('alice') })
  const events: unknown[] = []
  const sub = client.subscribe('shared', (e) => events.push(e))
  const first: Change[] = []
  const one = client.liveState('shared', (value, ops) => first.push([value, ops]))
  await until(() => first.length === 1, 3000, 'the value')
  const second: Change[] = []
  const two = client.liveState('shared', (value, ops) => second.push([value, ops]))
  t.same(second, [[{ n: 1 }, undefined]], 'a second listener gets the value at once')
  one.unsubscribe()
  two.unsubscribe()
  await state.set({ n: 2 })
  await app.realtime.emit('shared', { type: 'agent:thought', data: { runId: 'r', content: 'still here' } })
  await until(() => events.length === 1, 3000, 'the event')
  t.equal(sub.seq, 3, 'the room is still held by its subscription')
  t.equal(events.length, 1, 'the patch is no event for the handlers')
})

/** A scripted server that answers each subscribe with `answers[n]` (the n-th subscribe), then sends `after[n]`. */
async function scripted(t: Test, answers: object[], after: object[][]) {
  let subscribes = 0
  const server = await scriptedServer(t, (socket: WebSocket) => {
    socket.send(JSON.stringify({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 30_000, maxPayload: 65536 } }))
    socket.on('message', (m) => {
      const msg = JSON.parse(String(m))
      if (msg.type !== 'subscribe') return
      const n = subscribes++
      socket.send(
        JSON.stringify({ type: 'subscribed', id: msg.id, room: 'g', data: { seq: 1, epoch: 'E', recovered: false, ...answers[n] } })
      )
      for (const frame of after[n] ?? []) socket.send(JSON.stringify(frame))
    })
  })
  return { url: server.url, subscribes: () => subscribes }
}

const patch = (seq: number, version: number, ops: object[], epoch = 'D') => ({
  type: 'state_patch',
  room: 'g',
  seq,
  data: { version, epoch, ops },
  ts: new Date().toISOString()
})

t.test('a patch that skips a version, or does not apply, brings a fresh value by itself', async (t) => {
  const server = await scripted(
    t,
    [
      { state: { value: { a: 1 }, version: 1, epoch: 'D' } },
      { state: { value: { a: 3 }, version: 3, epoch: 'D' } },
      { seq: 3, state: { value: { a: 4 }, version: 4, epoch: 'D' } }
    ],
    [
      // An old patch (already in the value), then one that skips version 2.
      [patch(2, 1, [{ op: 'replace', path: '', value: { a: 0 } }]), patch(3, 3, [{ op: 'replace', path: '/a', value: 3 }])],
      // One that follows but cannot apply.
      [patch(2, 4, [{ op: 'remove', path: '/missing' }])],
      // A new epoch starts whole.
      [patch(4, 1, [{ op: 'replace', path: '', value: { fresh: true } }], 'D2')]
    ]
  )
  const client = sdk(t, server.url)
  const changes: Change[] = []
  client.liveState('g', (value, ops) => changes.push([value, ops]))
  await until(() => changes.length === 4, 3000, 'four values')
  t.same(changes, [
    [{ a: 1 }, undefined],
    [{ a: 3 }, undefined],
    [{ a: 4 }, undefined],
    [{ fresh: true }, [{ op: 'replace', path: '', value: { fresh: true } }]]
  ])
  t.equal(server.subscribes(), 3, 'one subscribe, then one per patch that did not follow')
})

t.test('a patch that does not apply is asked for again with the ones after it, though a later one came while asking', async (t) => {
  const good = (v: number) => [{ op: 'replace', path: '/a', value: v }]
  const server = await scripted(
    t,
    [
      { state: { value: { a: 1 }, version: 1, epoch: 'D' } },
      { seq: 1, recovered: true, state: { value: { a: 2 }, version: 2, epoch: 'D' } }
    ],
    [
      // Version 2 cannot apply here; version 3 arrives live while the client is asking for the room again.
      [patch(2, 2, [{ op: 'remove', path: '/missing' }]), patch(3, 3, good(3))],
      // The answer holds version 2 and resumes after seq 1: seq 2 and 3 again, as a server replays them.
      [patch(2, 2, [{ op: 'remove', path: '/missing' }]), patch(3, 3, good(3))]
    ]
  )
  const client = sdk(t, server.url)
  const live = client.liveState<{ a: number }>('g', () => {})
  await until(() => live.version === 3, 3000, 'version 3')
  t.same(live.value, { a: 3 })
  t.equal(server.subscribes(), 2, 'one subscribe, and one for the patch that did not apply')
})

t.test('a room whose state went is reported as undefined; a subscribed with the value held changes nothing', async (t) => {
  const server = await scripted(
    t,
    [{ state: { value: { a: 1 }, version: 1, epoch: 'D' } }, { state: { value: { a: 1 }, version: 1, epoch: 'D' } }, {}],
    [[patch(2, 3, [])], [patch(3, 3, [])]]
  )
  const client = sdk(t, server.url)
  const changes: Change[] = []
  client.liveState('g', (value, ops) => changes.push([value, ops]))
  await until(() => server.subscribes() === 3, 3000, 'three subscribes')
  await until(() => changes.length === 2, 3000, 'the value, then none')
  t.same(changes, [
    [{ a: 1 }, undefined],
    [undefined, undefined]
  ])
})
