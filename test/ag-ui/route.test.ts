import Fastify from 'fastify'
import t from 'tap'
import realtime from '../../src/index.js'
import { faultyAdapter } from '../helpers/faulty-adapter.js'
import { latch, SECRET } from '../helpers/index.js'
import { aguiApp, input, post, readSse, SseReader } from './helpers.js'

t.test('agui.route() refuses a bad url, handler or option, and a registry without the AG-UI events, naming them', async (t) => {
  const app = Fastify()
  await app.register(realtime, { jwt: { secret: SECRET } })
  t.teardown(() => app.close())
  t.throws(() => app.realtime.agui.route('/agent', async () => undefined), {
    code: 'FST_REALTIME_INVALID_OPTION',
    message: /needs the AG-UI events in the "events" option \(spread aguiEvents; TEXT_MESSAGE_START is missing\)/
  })
  const ok = await aguiApp(t, async () => undefined)
  t.throws(() => ok.realtime.agui.route('agent', async () => undefined), /url must be a path starting with "\/"/)
  t.throws(() => ok.realtime.agui.route('/x', 'nope' as never), /handler must be a function/)
  t.throws(
    () => ok.realtime.agui.route('/x', async () => undefined, { window: -1 }),
    /option "window" must be a whole number of ms from 0 \(got -1\)/
  )
  t.throws(() => ok.realtime.agui.route('/x', async () => undefined, { heartbeat: 0 }), /option "heartbeat"/)
  t.throws(() => ok.realtime.agui.route('/x', async () => undefined, { retry: 1.5 }), /option "retry"/)
})

t.test('a bad run input is a 400 that names the field, a bad thread id a 400 invalid_room; nothing runs', async (t) => {
  let runs = 0
  const app = await aguiApp(t, async () => {
    runs++
  })
  const res = await post(app, { threadId: 't', runId: 'r' })
  t.equal(res.status, 400)
  t.match((await res.json()).message, /messages/)
  const room = await post(app, input('no{braces}', 'r1'))
  t.equal(room.status, 400)
  t.equal((await room.json()).code, 'invalid_room')
  const query = await fetch(`${app.listeningOrigin}/agent?threadId=t`)
  t.equal(query.status, 400)
  const badRoom = await fetch(`${app.listeningOrigin}/agent?threadId=a%7Bb%7D&runId=r`)
  t.equal((await badRoom.json()).code, 'invalid_room')
  t.equal(runs, 0)
})

t.test('run.emit() refuses an invalid event and the events the route sends itself; helpers refuse misuse', async (t) => {
  const seen: string[] = []
  const app = await aguiApp(t, async (_input, run) => {
    for (const bad of [
      { type: 'TEXT_MESSAGE_CONTENT', messageId: 'm' },
      { type: 'RUN_FINISHED', threadId: 't', runId: 'r' }
    ]) {
      try {
        await run.emit(bad as never)
      } catch (err) {
        seen.push((err as Error).message)
      }
    }
    const text = run.text()
    try {
      text.append(1 as never)
    } catch (err) {
      seen.push((err as Error).message)
    }
    await text.end()
    await text.end().catch((err: Error) => seen.push(err.message))
    try {
      text.append('late')
    } catch (err) {
      seen.push((err as Error).message)
    }
    const call = run.toolCall('f', { toolCallId: 'c1' })
    await call.args({ q: 1 })
    await call.end()
    await call.args('{}').catch((err: Error) => seen.push(err.message))
    await call.result('ok')
    return undefined
  })
  const events = await readSse(await post(app, input('misuse', 'r1')))
  t.match(seen, [
    /TEXT_MESSAGE_CONTENT is invalid at \/delta/,
    /RUN_FINISHED is sent by the route/,
    /text must be a string/,
    /has ended/,
    /has ended/,
    /tool call c1 has ended/
  ])
  t.equal(events.find((e) => e.event.type === 'TOOL_CALL_ARGS')?.event.delta, '{"q":1}')
  t.same(
    events.map((e) => e.event.type),
    [
      'RUN_STARTED',
      'TEXT_MESSAGE_START',
      'TEXT_MESSAGE_END',
      'TOOL_CALL_START',
      'TOOL_CALL_ARGS',
      'TOOL_CALL_END',
      'TOOL_CALL_RESULT',
      'RUN_FINISHED'
    ]
  )
})

t.test('a run emitting or changing state after it was cancelled is refused', async (t) => {
  let late: unknown
  let lateState: unknown
  let reached!: () => void
  const waiting = new Promise<void>((resolve) => {
    reached = resolve
  })
  const app = await aguiApp(t, async (_input, run, signal) => {
    reached()
    await new Promise((resolve) => signal.addEventListener('abort', resolve))
    await run.emit({ type: 'STEP_STARTED', stepName: 'late' }).catch((err: unknown) => {
      late = err
    })
    await run.state.set({ late: true }).catch((err: unknown) => {
      lateState = err
    })
    // Thrown after the cancel ended the run: nothing more is sent.
    throw late
  })
  const res = post(app, input('closing', 'r1'))
  await waiting
  await app.realtime.cancel({ room: 'agui:closing', runId: 'r1' })
  const events = await readSse(await res)
  t.equal(events.at(-1)?.event.code, 'cancelled')
  t.match(late, { code: 'FST_REALTIME_INVALID_EVENT' })
  t.match(lateState, { code: 'FST_REALTIME_INVALID_EVENT', message: /has ended/ })
  t.notOk(
    events.some((e) => e.event.type === 'STATE_SNAPSHOT'),
    'no state event'
  )
})

t.test('app.close() ends the open event streams, of runs and of re-attached clients', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const app = await aguiApp(t, async (_input, run) => {
    await run.emit({ type: 'STEP_STARTED', stepName: 'wait' })
    await gate
  })
  const sse = new SseReader(await post(app, input('shutdown', 'r1')))
  await sse.until((events) => events.length === 2)
  const attached = new SseReader(await fetch(`${app.listeningOrigin}/agent?threadId=shutdown&runId=r1`))
  await attached.until((events) => events.length === 2)
  await app.close()
  t.same((await sse.until()).length, 2, 'the run stream ended')
  t.same((await attached.until()).length, 2, 'the re-attached stream ended')
  release()
})

t.test('the event stream starts with the retry hint and sends heartbeat comments while the run is idle', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const app = await aguiApp(t, async () => gate, {}, { retry: 250, heartbeat: 20, window: 5 })
  const res = await post(app, input('beat', 'r1'))
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  let text = ''
  while ((text.match(/: ping\n\n/g) ?? []).length < 2) text += decoder.decode((await reader.read()).value, { stream: true })
  t.ok(text.startsWith('retry: 250\n\n'), 'retry first')
  t.match(text, /id: 1:[^\n]+\ndata: \{"type":"RUN_STARTED"/)
  release()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    text += decoder.decode(value, { stream: true })
  }
  t.match(text, /"type":"RUN_FINISHED"/)
})

t.test('two requests for one run at once: one runs it, the other is a 409 run_exists', async (t) => {
  let runs = 0
  const app = await aguiApp(t, async () => {
    runs++
  })
  const answers = await Promise.all([post(app, input('twice', 'r1')), post(app, input('twice', 'r1'))])
  t.same(answers.map((res) => res.status).sort(), [200, 409])
  const refused = answers.find((res) => res.status === 409) as Response
  t.equal((await refused.json()).code, 'run_exists')
  const events = await readSse(answers.find((res) => res.status === 200) as Response)
  t.equal(events.at(-1)?.event.type, 'RUN_FINISHED')
  t.equal(runs, 1)
})

t.test('a text delta the log could not take ends the message with an error and the run with RUN_ERROR, not a gap', async (t) => {
  const adapter = faultyAdapter()
  const failed = latch()
  let ended: unknown
  const app = await aguiApp(
    t,
    async (_input, run) => {
      const text = run.text()
      // Once the step is out, the message has started and its stream is open.
      await run.emit({ type: 'STEP_STARTED', stepName: 'answer' })
      adapter.fail('publish', {
        message: 'store down',
        when: (room) => {
          const log = room.split(':').length === 3
          if (log) failed.open()
          return log
        }
      })
      text.append('Hel')
      await failed.done
      adapter.heal()
      try {
        await text.end()
      } catch (err) {
        ended = (err as Error).message
        throw err
      }
    },
    { adapter }
  )
  const events = await readSse(await post(app, input('t', 'r')))
  t.match(ended, /the faulty adapter failed: Error: store down/, 'end() rejects with what the lost delta met')
  t.same(
    events.map((e) => e.event.type),
    ['RUN_STARTED', 'TEXT_MESSAGE_START', 'STEP_STARTED', 'RUN_ERROR'],
    'no TEXT_MESSAGE_END after a gap'
  )
})
