// Token streaming: app.realtime.stream() coalesces appends into few deltas; a late joiner gets the text so far.
import t from 'tap'
import { defineEvents, Type } from '../src/index.js'
import type { DeltaMessage } from '../src/protocol/messages.js'
import { connectTest, type TestClient, type TestFrame } from '../src/testing.js'
import { scriptedServer, sdk, until } from './helpers/client.js'
import { faultyAdapter } from './helpers/faulty-adapter.js'
import { buildApp, delay, logCapture, sign } from './helpers/index.js'

const thought = { type: 'agent:thought' as const, data: { runId: 'r1', content: '' } }
const tokens = (n: number) => Array.from({ length: n }, (_, i) => `t${i} `)

/** Takes the stream's deltas until its final event, applying each at its offset; returns the text and the frame count. */
async function follow(client: TestClient, id: string, start: string): Promise<{ text: string; deltas: number; final: TestFrame }> {
  let text = start
  let deltas = 0
  for (;;) {
    const frame = await client.next(undefined, { timeout: 10_000 })
    if (frame.type === 'agent:thought' && frame.stream === id) return { text, deltas, final: frame }
    if (frame.type !== 'delta') continue
    const { id: of, offset, text: piece } = (frame as unknown as DeltaMessage).data
    if (of !== id) continue
    deltas++
    if (offset > text.length) throw new Error(`a gap: offset ${offset} past ${text.length}`)
    text += piece.slice(text.length - offset)
  }
}

t.test('2,000 tokens arrive in a bounded number of frames, assembled exactly; a late joiner gets the text so far', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const early = await connectTest(app, { user: 'early' })
  await early.subscribe('workflow:s')
  const started = Date.now()
  const stream = app.realtime.stream('workflow:s', thought)
  const opened = await early.next('stream')
  t.match(opened.data, { id: stream.id, type: 'agent:thought', field: 'content', data: { runId: 'r1', content: '' }, text: '' })
  const all = tokens(2000)
  let late: TestClient | undefined
  let lateStart = ''
  for (const [i, token] of all.entries()) {
    stream.append(token)
    if (i % 20 === 19) await delay(2)
    if (i === 999) {
      // Half-way (several deltas sent already), another client joins: it is told the text so far, not 1,000 tokens.
      late = await connectTest(app, { user: 'late' })
      const info = (await late.subscribe('workflow:s')) as unknown as { streams: Array<{ id: string; text: string }> }
      t.equal(info.streams.length, 1, 'the open stream is listed in subscribed')
      lateStart = info.streams[0]?.text as string
      t.ok(lateStart.length > 0 && all.join('').startsWith(lateStart), 'with the text so far')
      t.equal(info.streams[0]?.id, stream.id)
    }
  }
  const ended = await stream.end()
  const elapsed = Date.now() - started
  const whole = all.join('')
  const seen = await follow(early, stream.id, '')
  t.ok(seen.text.length > 0 && whole.startsWith(seen.text), 'the deltas assemble in order, with no gap')
  t.equal(
    (seen.final.data as { content: string }).content,
    whole,
    'the final event holds the whole text (the appends since the last delta too)'
  )
  t.equal(seen.final.seq, ended.seq, 'as an ordinary event of the history')
  t.ok(seen.deltas <= Math.floor(elapsed / 30) + 2, `${seen.deltas} deltas in ${elapsed} ms: at most one per 30 ms window`)
  t.ok(seen.deltas < 200, `${seen.deltas} delta frames for 2,000 tokens`)
  const joined = await follow(late as TestClient, stream.id, lateStart)
  t.equal(joined.text, seen.text, 'the late joiner assembles the same text')
  t.equal((joined.final.data as { content: string }).content, whole)
  t.ok(joined.deltas < seen.deltas, 'from fewer deltas: only those after it joined')
  t.comment(
    `streams: 2000 tokens in ${elapsed} ms → ${seen.deltas} delta frames; the late joiner started from ${lateStart.length} characters`
  )
})

t.test('a client resuming mid-stream gets the text so far, and the history holds no token', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const first = await connectTest(app, { user: 'u' })
  const { epoch } = await first.subscribe('workflow:r')
  await app.realtime.emit('workflow:r', { type: 'agent:thought', data: { runId: 'r1', content: 'before' } })
  const stream = app.realtime.stream('workflow:r', thought, { window: 0 })
  stream.append('Hello')
  await first.next('delta')
  await first.close()
  stream.append(', world')
  await delay(20)
  const again = await connectTest(app, { user: 'u' })
  const info = (await again.subscribe('workflow:r', { since: 0, epoch })) as unknown as { recovered: boolean; streams: { text: string }[] }
  t.equal(info.recovered, true)
  t.same(
    info.streams.map((s) => s.text),
    ['Hello, world']
  )
  t.equal((await again.next('agent:thought')).data.content, 'before', 'the replay: the one event, no token')
  stream.append('!')
  t.same((await again.next('delta')).data, { id: stream.id, offset: 12, text: '!' })
  await stream.end()
  t.equal((await again.next('agent:thought')).data.content, 'Hello, world!')
  const after = await connectTest(app, { user: 'v' })
  const done = (await after.subscribe('workflow:r')) as unknown as Record<string, unknown>
  t.notOk('streams' in done, 'an ended stream is listed no more')
})

t.test('a custom field, streams side by side, and a stream nobody watches', async (t) => {
  const events = defineEvents({ 'chat:message': Type.Object({ author: Type.String(), body: Type.String() }) })
  const app = await buildApp(t, { authorize: () => true, events })
  const client = await connectTest<typeof events>(app)
  await client.subscribe('chat')
  const a = app.realtime.stream('chat', { type: 'chat:message', data: { author: 'bot', body: 'Hi' } } as never, { field: 'body' })
  const b = app.realtime.stream('chat', { type: 'chat:message', data: { author: 'other', body: '' } } as never, { field: 'body' })
  a.append(' there')
  b.append('Yes')
  t.equal(a.text, 'Hi there')
  const joiner = await connectTest(app, { user: 'j' })
  await delay(50)
  const listed = (await joiner.subscribe('chat')) as unknown as { streams: { id: string; text: string; field: string }[] }
  t.same(
    listed.streams.map((s) => [s.id, s.field, s.text]).sort(),
    [
      [a.id, 'body', 'Hi there'],
      [b.id, 'body', 'Yes']
    ].sort()
  )
  t.same((await b.end()).seq, 1)
  t.same((await a.end()).seq, 2)
  t.equal((await client.next('chat:message')).data.body, 'Yes')
  t.equal((await client.next('chat:message')).data.body, 'Hi there')
  const unwatched = app.realtime.stream('quiet', { type: 'chat:message', data: { author: 'bot', body: '' } } as never, { field: 'body' })
  unwatched.append('nobody hears this')
  t.equal((await unwatched.end()).seq, 1)
})

t.test('misuse throws at once, with a clear error', async (t) => {
  const app = await buildApp(t, { validate: false })
  const stream = app.realtime.stream as (room: string, event: unknown, options?: unknown) => ReturnType<typeof app.realtime.stream>
  t.throws(() => stream('bad{room}', thought), { code: 'FST_REALTIME_INVALID_EVENT' })
  t.throws(() => stream('r', { type: 'nope', data: {} }), { message: /unknown event type "nope"/ })
  t.throws(() => stream('r', { type: 'agent:thought', data: null }), { message: /stream "agent:thought": data.content must be a string/ })
  t.throws(() => stream('r', thought, { field: 'runId2' }), { message: /data.runId2 must be a string/ })
  t.throws(() => stream('r', thought, { window: -1 }), { message: /stream window must be a whole number of ms from 0 to 60000 \(got -1\)/ })
  t.throws(() => stream('r', thought, { window: 1.5 }), { message: /got 1.5/ })
  const s = stream('r', thought)
  s.append('')
  t.throws(() => s.append(5 as never), { message: /text must be a string/ })
  await s.end()
  t.throws(() => s.append('late'), { message: new RegExp(`stream ${s.id} has ended`) })
  await t.rejects(s.end(), { message: /has ended/ })
})

t.test('when the adapter fails, appends are logged and end() rejects', async (t) => {
  const adapter = faultyAdapter()
  const logs = logCapture('warn')
  const app = await buildApp(t, { adapter }, { fastify: logs.fastify })
  const s = app.realtime.stream('r', thought, { window: 0 })
  adapter.fail('stateWrite', { message: 'state down' })
  s.append('lost')
  await delay(20)
  t.ok(logs.records().some((r) => r.msg === 'realtime stream write failed' && r.room === 'r' && r.stream === s.id))
  await t.rejects(s.end(), { message: 'state down' })
})

t.test('the SDK assembles a stream into one growing string; a late client starts from the text so far', async (t) => {
  const app = await buildApp(t, { authorize: () => true })
  const early: string[] = []
  const client = sdk(t, app, { token: sign('alice') })
  const stream = await new Promise<ReturnType<typeof app.realtime.stream>>((resolve) => {
    client.subscribe(
      'workflow:sdk',
      (event) => {
        if (event.type === 'agent:thought') early.push(`${event.partial === true ? 'partial' : `final@${event.seq}`}:${event.data.content}`)
      },
      { onSubscribed: () => resolve(app.realtime.stream('workflow:sdk', thought)) }
    )
  })
  const all = tokens(500)
  for (const [i, token] of all.entries()) {
    stream.append(token)
    if (i % 25 === 24) await delay(2)
  }
  await until(() => early.length > 1)
  const late: string[] = []
  const other = sdk(t, app, { token: sign('bob') })
  other.on('agent:thought', (event) => late.push(`${event.partial === true ? 'partial' : 'final'}:${event.stream}:${event.data.content}`))
  other.subscribe('workflow:sdk')
  await until(() => late.length > 0)
  const { seq } = await stream.end()
  const whole = all.join('')
  await until(() => early.at(-1)?.startsWith('final') === true && late.at(-1)?.startsWith('final') === true)
  t.equal(early.at(-1), `final@${seq}:${whole}`, 'the finished event holds exactly the whole text')
  t.equal(early[0], 'partial:', 'the stream opens empty')
  const texts = early.slice(0, -1).map((e) => e.slice('partial:'.length))
  t.ok(
    texts.every((text, i) => whole.startsWith(text) && (i === 0 || text.length > (texts[i - 1] as string).length)),
    'one growing string: every partial extends the one before'
  )
  t.ok(texts.length < 100, `${texts.length} updates for 500 tokens`)
  const lateFirst = late[0] as string
  t.match(lateFirst, new RegExp(`^partial:${stream.id}:t0 `), 'the late client starts from the text so far')
  t.equal(late.at(-1), `final:${stream.id}:${whole}`)
})

t.test('the SDK skips what it has, asks again on a gap, and ignores streams it does not know', async (t) => {
  const server = await scriptedServer(t, (socket, received) => {
    const send = (frame: unknown) => socket.send(JSON.stringify(frame))
    send({ type: 'ready', data: { connectionId: 'c', userId: 'u', heartbeatMs: 60_000 } })
    socket.on('message', () => {
      const last = received.at(-1) as { type: string; id: string; room: string }
      if (last.type !== 'subscribe') return
      const subscribes = received.filter((m) => (m as { type: string }).type === 'subscribe').length
      const state = { id: 's1', type: 'agent:thought', field: 'content', data: { runId: 'r', content: '' }, ts: 'now' }
      if (subscribes === 1) {
        send({ type: 'subscribed', id: last.id, room: 'r', data: { seq: 0, epoch: 'e', recovered: false } })
        send({ type: 'stream', room: 'elsewhere', data: { ...state, text: '' } })
        send({ type: 'delta', room: 'elsewhere', data: { id: 's1', offset: 0, text: 'x' } })
        send({ type: 'delta', room: 'r', data: { id: 'unknown', offset: 0, text: 'x' } })
        send({ type: 'stream', room: 'r', data: { ...state, text: 'ab' } })
        send({ type: 'delta', room: 'r', data: { id: 's1', offset: 1, text: 'bc' } })
        send({ type: 'delta', room: 'r', data: { id: 's1', offset: 0, text: 'ab' } })
        send({ type: 'delta', room: 'r', data: { id: 's1', offset: 9, text: 'gap' } })
        send({ type: 'delta', room: 'r', data: { id: 's1', offset: 9, text: 'gap again' } })
      } else {
        send({
          type: 'subscribed',
          id: last.id,
          room: 'r',
          data: { seq: 0, epoch: 'e', recovered: true, streams: [{ ...state, text: 'abcdefghi' }] }
        })
        send({ type: 'agent:thought', room: 'r', seq: 1, stream: 's1', data: { runId: 'r', content: 'abcdefghij' }, ts: 'now' })
      }
    })
  })
  const seen: string[] = []
  const client = sdk(t, server.url, { token: 'x' })
  client.subscribe('r', (event) =>
    seen.push(`${event.partial === true ? 'partial' : 'final'}:${(event.data as { content: string }).content}`)
  )
  await until(() => seen.length === 4)
  t.same(seen, ['partial:ab', 'partial:abc', 'partial:abcdefghi', 'final:abcdefghij'])
  t.equal(server.connections(), 1, 'the gap was closed by subscribing again, on the same connection')
})
