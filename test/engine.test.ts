// The write path: one frame per emit for every recipient, write coalescing in bursts, `immediate`, `batch`,
// permessage-deflate, and the per-connection budgets that drop volatile events or close a slow consumer.
import type { Socket } from 'node:net'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type WebSocket from 'ws'
import { sdk, until } from './helpers/client.js'
import { buildApp, connect, delay, sign, type TestClient } from './helpers/index.js'

const thought = (content: string) => ({ type: 'agent:thought' as const, data: { runId: 'r', content } })

/** The server side of the only connection to `app`: what has been handed to its TCP socket so far. */
function serverSide(app: FastifyInstance): { ws: WebSocket; written: () => number } {
  const [ws] = [...app.websocketServer.clients] as WebSocket[]
  const socket = (ws as unknown as { _socket: Socket })._socket
  return { ws: ws as WebSocket, written: () => socket.bytesWritten }
}

/** Emits without waiting in between, so every event falls in one turn of the event loop. */
function burst(app: FastifyInstance, n: number, room = 'r', from = 0): Promise<unknown> {
  return Promise.all(Array.from({ length: n }, (_, i) => app.realtime.emit(room, thought(`${from + i}`))))
}

async function subscribed(app: FastifyInstance, room = 'r', sub = 'alice'): Promise<TestClient> {
  const c = await connect(app, sub)
  await c.subscribe(room)
  return c
}

t.test('a burst goes out as one frame at once and the rest in one write at the end of the turn, each its own event', async (t) => {
  // A window longer than the burst, so the end of the turn is what writes the rest.
  const app = await buildApp(t, { authorize: () => true, coalesce: { windowMs: 10_000 } })
  const c = await subscribed(app)
  let reads = 0
  ;(c.ws as unknown as { _socket: Socket })._socket.on('data', () => reads++)
  const server = serverSide(app)
  const before = server.written()
  const done = burst(app, 200)
  const first = server.written() - before
  t.ok(first > 0 && first < 200, `only the first frame is written during the burst (${first} bytes)`)
  await done
  await nextTurn()
  t.ok(server.written() - before > 200 * 100, 'the other 199 follow at the end of the turn')
  const got = await c.collect('agent:thought', 200)
  t.same(
    got.map((e) => e.seq),
    Array.from({ length: 200 }, (_, i) => i + 1),
    'every event arrives, in order, as its own envelope'
  )
  t.ok(reads <= 10, `the client read it all in ${reads} chunks`)
})

t.test(
  'a burst over several turns queues from the first frame of each, for up to the window; after a pause, a frame goes out at once',
  async (t) => {
    const app = await buildApp(t, { authorize: () => true, coalesce: { windowMs: 1000 } })
    const c = await subscribed(app)
    const server = serverSide(app)
    await delay(1100)
    let before = server.written()
    const first = burst(app, 10)
    t.ok(server.written() > before, 'the first frame of the first turn goes out at once')
    await first
    await nextTurn()
    before = server.written()
    const second = burst(app, 10, 'r', 10)
    t.equal(server.written(), before, 'the next turn continues the burst: nothing written until it ends')
    await second
    await nextTurn()
    t.equal(server.written(), before, 'nor at the end of that turn: the queue fills across turns for the window')
    const third = burst(app, 10, 'r', 20)
    await third
    await until(() => server.written() > before + 20 * 100, 5000, 'the window to end')
    t.pass('then the twenty go out together')
    await delay(1100)
    before = server.written()
    void app.realtime.emit('r', thought('after the pause'))
    t.ok(server.written() > before, 'after a pause longer than the window, at once again')
    t.equal((await c.collect('agent:thought', 31)).at(-1)?.data.content, 'after the pause')
  }
)

t.test('coalesce: false writes every frame at once', async (t) => {
  const app = await buildApp(t, { authorize: () => true, coalesce: false })
  const c = await subscribed(app)
  const server = serverSide(app)
  const before = server.written()
  const done = burst(app, 50)
  t.ok(server.written() - before > 50 * 100, 'all 50 frames are handed to the socket during the burst')
  await done
  t.equal((await c.collect('agent:thought', 50)).length, 50)
})

t.test('a queue is written early when it reaches coalesce.maxBytes or has waited coalesce.windowMs', async (t) => {
  const app = await buildApp(t, { authorize: () => true, coalesce: { maxBytes: 2048, windowMs: 5 } })
  const c = await subscribed(app)
  const server = serverSide(app)
  let before = server.written()
  const done = burst(app, 100)
  const during = server.written() - before
  t.ok(during > 100 * 100 - 2048, `all but the last 2 KiB are written during the burst (${during} bytes)`)
  await done
  // Past the window, the burst is over: the next frame goes out at once again.
  await delay(20)

  before = server.written()
  const emits = [app.realtime.emit('r', thought('a')), app.realtime.emit('r', thought('b'))]
  const afterTwo = server.written() - before
  const until = performance.now() + 6
  while (performance.now() < until) {
    // The turn goes on past the window.
  }
  emits.push(app.realtime.emit('r', thought('c')))
  t.ok(server.written() - before > afterTwo * 2, 'the third emit, past the window, writes what waited')
  await Promise.all(emits)
  t.equal((await c.collect('agent:thought', 103)).length, 103)
})

t.test('an immediate emit and a server request are written at once, with what waited before them', async (t) => {
  const app = await buildApp(t, { authorize: () => true, coalesce: { windowMs: 10_000 } })
  const c = await subscribed(app)
  const server = serverSide(app)
  const before = server.written()
  const emits = [app.realtime.emit('r', thought('1')), app.realtime.emit('r', thought('2'))]
  const one = server.written() - before
  emits.push(app.realtime.emit('r', thought('3')), app.realtime.emit('r', thought('4'), { immediate: true }))
  t.ok(server.written() - before > one * 3.5, 'all four are written by the time the immediate emit returns')
  await Promise.all(emits)
  t.same(
    (await c.collect('agent:thought', 4)).map((e) => e.data.content),
    ['1', '2', '3', '4']
  )
  await nextTurn()

  const mark = server.written()
  void app.realtime.emit('r', thought('5'))
  const fifth = server.written() - mark
  void app.realtime.emit('r', thought('6'))
  t.equal(server.written() - mark, fifth, 'the sixth waits')
  const asked = app.realtime.request(c.ready.data.connectionId, {
    type: 'hitl_request',
    data: { requestId: 'q1', runId: 'r', question: 'Go?' }
  })
  t.ok(server.written() - mark > fifth * 2, 'the request and the event that waited before it are out')
  const question = await c.next('hitl_request')
  c.send({ type: 'reply', id: question.id, data: 'yes' })
  t.equal(await asked, 'yes')
  t.equal((await c.collect('agent:thought', 2)).length, 2)
})

t.test('batch: frames that waited together arrive as one JSON array; the client SDK reads it as separate events', async (t) => {
  // A window longer than the burst, however slow the machine: the burst waits as one.
  const app = await buildApp(t, { authorize: () => true, batch: true, coalesce: { windowMs: 10_000 } })
  const raw = await subscribed(app)
  const messages: string[] = []
  raw.ws.on('message', (data) => messages.push(String(data)))
  const seen: number[] = []
  const client = sdk(t, app, { token: sign('bob') })
  let ready = false
  client.subscribe('r', (e) => seen.push(e.seq as number), { onSubscribed: () => (ready = true) })
  await until(() => ready)
  await burst(app, 5)
  await until(() => seen.length === 5)
  t.same(seen, [1, 2, 3, 4, 5], 'the SDK client got every event in order')
  t.same(
    (await raw.collect('agent:thought', 5)).map((e) => e.seq),
    [1, 2, 3, 4, 5]
  )
  t.equal(messages.length, 2, 'two WebSocket messages')
  t.notOk(messages[0]?.startsWith('['), 'the first event went out at once, on its own')
  const batch = JSON.parse(messages[1] as string)
  t.ok(Array.isArray(batch), 'the rest came as one array')
  t.same(
    batch.map((e: { seq: number }) => e.seq),
    [2, 3, 4, 5]
  )
})

t.test('deflate: each event is compressed once and that frame serves every client that offered it', async (t) => {
  const app = await buildApp(t, { authorize: () => true, deflate: { threshold: 256 }, presence: false })
  const clients = {
    offered: await subscribed(app, 'r', 'a'),
    plain: await connect(app, 'b', { perMessageDeflate: false }),
    smallWindow: await connect(app, 'c', { perMessageDeflate: { serverMaxWindowBits: 10 } }),
    tinyWindow: await connect(app, 'd', { perMessageDeflate: { serverMaxWindowBits: 8 } })
  }
  for (const c of [clients.plain, clients.smallWindow, clients.tinyWindow]) await c.subscribe('r')
  t.equal(clients.offered.ws.extensions, 'permessage-deflate')
  t.equal(clients.plain.ws.extensions, '')
  const sockets = new Map(
    [...app.websocketServer.clients].map((ws) => {
      const socket = (ws as unknown as { _socket: Socket })._socket
      return [socket.remotePort, socket] as const
    })
  )
  const wire = (c: TestClient) => sockets.get((c.ws as unknown as { _socket: Socket })._socket.localPort) as Socket
  const big = 'The agent looked up the order history and compared it with the refund policy. '.repeat(60)
  const written = () => Object.values(clients).map((c) => wire(c).bytesWritten)
  const before = written()
  await app.realtime.emit('r', thought(big))
  await nextTurn()
  const sizes = written().map((n, i) => n - (before[i] as number))
  for (const c of Object.values(clients)) t.equal((await c.next('agent:thought')).data.content, big, 'the same event for everyone')
  const [offered, plain, smallWindow, tinyWindow] = sizes as [number, number, number, number]
  t.ok(plain > big.length, `uncompressed for a client that did not offer deflate (${plain} bytes)`)
  t.ok(offered < plain / 5, `compressed for a client that did (${offered} bytes)`)
  t.ok(smallWindow < plain / 5, `compressed in the 1 KiB window a client asked for (${smallWindow} bytes)`)
  t.ok(tinyWindow > big.length, `uncompressed for a window below what raw deflate keeps to (${tinyWindow} bytes)`)

  const small = written()
  await app.realtime.emit('r', thought('short'))
  await nextTurn()
  const [shortOffered, shortPlain] = written().map((n, i) => n - (small[i] as number))
  t.equal(shortOffered, shortPlain, 'below the threshold, a message goes uncompressed to everyone')
  t.equal((await clients.offered.next('agent:thought')).data.content, 'short')

  const late = await connect(app, 'e')
  const replay = await late.call({
    type: 'subscribe',
    room: 'r',
    data: { since: 0, epoch: (await app.realtime.emit('r', thought('x'))).epoch }
  })
  t.equal(replay.type, 'subscribed')
  t.same(
    (await late.collect('agent:thought', 3)).map((e) => e.data.content),
    [big, 'short', 'x'],
    'a replay from the history is compressed for that connection alone'
  )
})

t.test('deflate: a compressed client message that inflates past limits.maxPayload closes with 1009; others go on', async (t) => {
  const app = await buildApp(t, { authorize: () => true, deflate: true })
  const bystander = await subscribed(app, 'r', 'b')
  const c = await connect(app)
  const huge = JSON.stringify({ type: 'ping', id: 'p', data: 'x'.repeat(200 * 1024) })
  const wire = (c.ws as unknown as { _socket: Socket })._socket
  const sentBefore = wire.bytesWritten
  c.send(huge)
  t.equal((await c.closed).code, 1009)
  t.ok(wire.bytesWritten - sentBefore < 2048, 'it crossed the wire compressed, far below the limit')
  await app.realtime.emit('r', thought('still here'))
  t.equal((await bystander.next('agent:thought')).data.content, 'still here')
  t.equal((await bystander.call({ type: 'ping' })).type, 'pong')
})

t.test('past limits.volatileBytes waiting, volatile events are dropped for that connection only; kept events still go', async (t) => {
  const app = await buildApp(t, {
    authorize: () => true,
    limits: { volatileBytes: 64 * 1024, bufferedBytes: 64 * 1024 * 1024 }
  })
  const stuck = await subscribed(app, 'r', 'stuck')
  const healthy = await subscribed(app, 'r', 'healthy')
  ;(stuck.ws as unknown as { _socket: Socket })._socket.pause()
  const serverOf = (c: TestClient) =>
    [...app.websocketServer.clients].find(
      (ws) => (ws as unknown as { _socket: Socket })._socket.remotePort === (c.ws as unknown as { _socket: Socket })._socket.localPort
    ) as WebSocket
  const chunk = 'y'.repeat(32 * 1024)
  let kept = 0
  // The loopback buffers a few MB before anything waits in the server: fill them, within a bound.
  while (serverOf(stuck).bufferedAmount <= 64 * 1024 && kept < 2000) {
    await app.realtime.emit('r', thought(chunk))
    kept++
    await delay(1)
  }
  t.ok(serverOf(stuck).bufferedAmount > 64 * 1024, `data waits for the stuck client after ${kept} events`)
  const droppedBefore = app.realtime.stats().dropped
  for (let i = 0; i < 10; i++)
    await app.realtime.emit('r', { type: 'task_update', data: { taskId: 't', status: 'running', progress: i } }, { volatile: true })
  await app.realtime.emit('r', thought('kept'))
  t.equal(app.realtime.stats().dropped - droppedBefore, 10, 'the ten volatile events were dropped for the stuck client')
  t.equal((await healthy.collect('task_update', 10, 10_000)).length, 10, 'the healthy client got all ten')
  ;(stuck.ws as unknown as { _socket: Socket })._socket.resume()
  const got = await stuck.collect('agent:thought', kept + 1, 20_000)
  t.equal(got.at(-1)?.data.content, 'kept', 'every kept event reached the stuck client once it read again')
  await delay(50)
  t.equal(stuck.frames.filter((f) => f.type === 'task_update').length, 0, 'and none of the dropped ones')
  t.equal(stuck.closeCode, undefined)
})

t.test('what waited is written before the close frame; nothing is written after the socket began closing', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const c = await subscribed(app)
  const emits = [app.realtime.emit('r', thought('1')), app.realtime.emit('r', thought('2')), app.realtime.emit('r', thought('3'))]
  await app.realtime.close()
  await Promise.all(emits)
  t.same(
    (await c.collect('agent:thought', 3)).map((e) => e.seq),
    [1, 2, 3]
  )
  t.equal((await c.closed).code, 1001)

  const app2 = await buildApp(t, { authorize: () => true })
  const d = await subscribed(app2)
  const server = serverSide(app2)
  const first = app2.realtime.emit('r', thought('a'))
  const second = app2.realtime.emit('r', thought('b'))
  // The socket closes under the connection before its queue is written, and before it learns of it.
  server.ws.close(1000, 'closed from below')
  const third = app2.realtime.emit('r', thought('c'), { immediate: true })
  await Promise.all([first, second, third])
  t.same(
    (await d.collect('agent:thought', 1)).map((e) => e.data.content),
    ['a']
  )
  t.same(await d.closed, { code: 1000, reason: 'closed from below' })
  t.equal(d.frames.filter((f) => f.type === 'agent:thought').length, 0, 'nothing after the close frame')
})
