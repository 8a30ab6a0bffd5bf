// fastify-realtime/react in Node: the hooks rendered by React (test renderer) against a real server and SDK client.
import { createElement as h, StrictMode } from 'react'
import { renderToString } from 'react-dom/server'
import { act, create, type ReactTestRenderer } from 'react-test-renderer'
import t from 'tap'
import type { ClientQuestion } from '../src/client/index.js'
import type { AgentEvents } from '../src/index.js'
import {
  type ConnectionView,
  RealtimeProvider,
  type RoomStateView,
  type RoomView,
  type StreamView,
  useConnection,
  usePresence,
  useQuestions,
  useRealtime,
  useRoom,
  useRoomState,
  useStream
} from '../src/react/index.js'
import { sdk, until } from './helpers/client.js'
import { buildApp, sign } from './helpers/index.js'

// React's act() environment flag for a renderer outside a test framework it knows.
;(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true

interface Seen {
  room?: RoomView
  stream?: StreamView
  members?: readonly unknown[]
  questions?: unknown[]
  connection?: ConnectionView
}

function Probe({ room, seen }: { room: string; seen: Seen }) {
  seen.room = useRoom(room)
  seen.stream = useStream(room)
  seen.members = usePresence(room)
  seen.questions = useQuestions(room)
  seen.connection = useConnection()
  return null
}

/** Waits for a condition while letting React apply the updates it caused. */
async function settle(check: () => boolean, what: string): Promise<void> {
  await until(check, 5000, what)
  await act(async () => {})
}

t.test('in StrictMode two components share one subscription; the hooks follow events, a stream, presence and questions', async (t) => {
  let subscribes = 0
  const app = await buildApp(t, {
    presence: true,
    authorize: ({ action }) => {
      if (action === 'subscribe') subscribes++
      return true
    }
  })
  const client = sdk(t, app, { token: sign('alice') })
  const a: Seen = {}
  const b: Seen = {}
  let renderer: ReactTestRenderer | undefined
  await act(async () => {
    renderer = create(
      h(
        StrictMode,
        null,
        h(RealtimeProvider, { client }, h(Probe, { room: 'workflow:1', seen: a }), h(Probe, { room: 'workflow:1', seen: b }))
      )
    )
  })
  await settle(() => a.room?.info !== undefined && a.connection?.state === 'open', 'subscribed and open')
  t.equal(subscribes, 1, 'one subscribe for two components, mounted twice each')
  await settle(() => a.members?.length === 1, 'the member list')
  t.match(a.members, [{ user: 'alice' }])

  const stream = app.realtime.stream('workflow:1', { type: 'agent:thought', data: { runId: 'r', content: '' } })
  stream.append('Hello')
  await settle(() => a.stream?.text === 'Hello', 'the partial text')
  t.equal(a.stream?.done, false)
  await stream.end()
  await settle(() => a.stream?.done === true, 'the finished stream')
  t.equal(b.room?.events.length, 1, 'the finished event, once, in both components')

  const question = app.realtime.ask('workflow:1', { type: 'hitl_request', data: { requestId: 'q1', question: 'Ship it?' } })
  await settle(() => a.questions?.length === 1, 'the open question')
  await client.reply((a.questions as Array<{ id: string }>)[0]?.id as string, { ok: true })
  t.same(await question, { ok: true })
  await settle(() => a.questions?.length === 0, 'the question settled')

  await act(async () => renderer?.unmount())
  await until(() => app.realtime.stats().rooms === 0, 5000, 'the room released after the last component left')
})

t.test('useQuestions without a room lists the open questions of every room held; with a room, only those of that room', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const client = sdk(t, app, { token: sign('alice') })
  const seen: { first?: RoomView; second?: RoomView; all?: ClientQuestion<AgentEvents>[]; inSecond?: ClientQuestion<AgentEvents>[] } = {}
  function Questions() {
    seen.first = useRoom('workflow:1')
    seen.second = useRoom('workflow:2')
    seen.all = useQuestions<AgentEvents>()
    seen.inSecond = useQuestions<AgentEvents>('workflow:2')
    return null
  }
  await act(async () => {
    create(h(RealtimeProvider, { client }, h(Questions)))
  })
  await settle(() => seen.first?.info !== undefined && seen.second?.info !== undefined, 'both rooms subscribed')
  const first = app.realtime.ask('workflow:1', { type: 'hitl_request', data: { requestId: 'q1', question: 'Ship it?' } })
  const second = app.realtime.ask('workflow:2', { type: 'hitl_request', data: { requestId: 'q2', question: 'Roll back?' } })
  await settle(() => seen.all?.length === 2 && seen.inSecond?.length === 1, 'the open questions')
  t.same(seen.all?.map((q) => q.room).sort(), ['workflow:1', 'workflow:2'])
  t.match(seen.inSecond, [{ room: 'workflow:2', type: 'hitl_request', data: { requestId: 'q2' } }])
  for (const question of seen.all ?? []) await client.reply(question.id, { ok: true })
  t.same(await Promise.all([first, second]), [{ ok: true }, { ok: true }])
})

t.test('useConnection reports the state, the close and the last error; useRealtime outside a provider throws', async (t) => {
  const app = await buildApp(t)
  const client = sdk(t, app, { token: sign('alice') })
  const seen: Seen = {}
  // Every view rendered: the client reconnects within milliseconds, so the one with the error may not be the latest.
  const views: ConnectionView[] = []
  function Connection() {
    seen.connection = useConnection()
    views.push(seen.connection)
    return null
  }
  await act(async () => {
    create(h(RealtimeProvider, { client }, h(Connection)))
  })
  await settle(() => seen.connection?.state === 'open', 'open')
  app.realtime.connection(client.connectionId as string)?.close(4029, 'rate limit exceeded')
  await settle(() => views.some((v) => v.error?.kind === 'rate_limited' && v.close?.code === 4029), 'the error and the close')
  await settle(() => seen.connection?.state === 'open' && seen.connection.error === undefined, 'open again, error cleared')

  function Orphan() {
    useRealtime()
    return null
  }
  t.throws(() => renderToString(h(Orphan)), { message: /wrap your components in <RealtimeProvider client=\{client\}>/ })
})

t.test('a refused room shows its error; useStream reads another field and an explicit stream id', async (t) => {
  const app = await buildApp(t, { authorize: ({ room }) => room !== 'secret' })
  const client = sdk(t, app, { token: sign('alice') })
  const seen: { refused?: RoomView; stream?: StreamView } = {}
  function Rooms() {
    seen.refused = useRoom('secret')
    seen.stream = useStream('workflow:2', { id: 's-fixed', field: 'summary' })
    return null
  }
  await act(async () => {
    create(h(RealtimeProvider, { client }, h(Rooms)))
  })
  await settle(() => seen.refused?.error !== undefined, 'the refusal')
  t.match(seen.refused?.error, { code: 'forbidden' })
  t.same(seen.stream, { text: '', done: false, event: undefined })
})

t.test('useRoomState in StrictMode: two components share one subscription and follow the value as it changes', async (t) => {
  let subscribes = 0
  const app = await buildApp(t, {
    authorize: ({ action }) => {
      if (action === 'subscribe') subscribes++
      return true
    }
  })
  const graph = app.realtime.state('graph:1')
  await graph.set({ nodes: { a: 'todo' } })
  const client = sdk(t, app, { token: sign('alice') })
  const views: RoomStateView<{ nodes: Record<string, string> }>[] = []
  function Graph() {
    views.push(useRoomState<{ nodes: Record<string, string> }>('graph:1'))
    return null
  }
  let renderer: ReactTestRenderer | undefined
  await act(async () => {
    renderer = create(h(StrictMode, null, h(RealtimeProvider, { client }, h(Graph), h(Graph))))
  })
  await settle(() => views.at(-1)?.version === 1, 'the value')
  t.same(views.at(-1), { value: { nodes: { a: 'todo' } }, version: 1 })
  t.equal(subscribes, 1, 'one subscribe for two components, mounted twice each')
  const before = views.at(-1)
  await graph.patch([{ op: 'replace', path: '/nodes/a', value: 'done' }])
  await settle(() => views.at(-1)?.version === 2, 'the change')
  t.same(views.at(-1)?.value, { nodes: { a: 'done' } })
  t.not(views.at(-1)?.value, before?.value, 'a new object, so React sees the change')
  await act(async () => renderer?.unmount())
  await until(() => app.realtime.stats().rooms === 0, 5000, 'the room released after the last component left')
})

t.test('useRoomState on a room the client already follows has its value at once', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  await app.realtime.state('graph:2').set({ step: 1 })
  const client = sdk(t, app, { token: sign('alice') })
  const direct = client.liveState('graph:2', () => {})
  await until(() => direct.version === 1, 5000, 'the value, followed directly')
  const views: RoomStateView[] = []
  function Graph() {
    views.push(useRoomState('graph:2'))
    return null
  }
  await act(async () => {
    create(h(RealtimeProvider, { client }, h(Graph)))
  })
  t.same(views.at(-1), { value: { step: 1 }, version: 1 }, 'rendered with the value held, no change needed')
})

t.test('the hooks are typed by the registries and state types given to them, and wrong uses do not compile', async (t) => {
  const { diagnose } = await import('./helpers/typescript.js')
  t.same(diagnose('test/types/react.ts'), [])
})
