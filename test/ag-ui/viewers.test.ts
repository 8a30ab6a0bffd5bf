import t from 'tap'
import { aguiStateRoom } from '../../src/ag-ui/index.js'
import { sdk, until } from '../helpers/client.js'
import { sign } from '../helpers/index.js'
import { aguiApp, input, post, SseReader } from './helpers.js'

const allowAll = { authorize: () => true }

t.test('a 2,000-delta run reaches a late WebSocket joiner as the text so far, then the remaining deltas', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const words = Array.from({ length: 2000 }, (_, i) => `w${i} `)
  const app = await aguiApp(
    t,
    async (_input, run) => {
      const text = run.text({ messageId: 'answer' })
      for (const word of words.slice(0, 1000)) text.append(word)
      await gate
      for (const word of words.slice(1000)) text.append(word)
      await text.end()
    },
    allowAll
  )
  const sse = new SseReader(await post(app, input('late', 'r1')))
  // The first half is in the log, so the room's stream holds it.
  await sse.until((events) => events.some((e) => e.event.type === 'TEXT_MESSAGE_CONTENT'))

  const client = sdk(t, app, { token: sign('viewer') })
  const received: any[] = []
  client.subscribe('agui:late', (event) => void received.push(event))
  await until(() => received.length > 0, 5000, 'the text so far').catch((e) => {
    release()
    throw e
  })
  const first = received[0]
  t.equal(first.type, 'TEXT_MESSAGE_CONTENT')
  t.equal(first.partial, true)
  t.ok(first.data.delta.startsWith('w0 w1 '), 'it starts with the text so far')
  t.ok(words.join('').startsWith(first.data.delta))
  release()
  await sse.until()
  await until(() => received.some((e) => e.type === 'RUN_FINISHED'), 5000, 'RUN_FINISHED')
  const whole = received.find((e) => e.type === 'TEXT_MESSAGE_CONTENT' && e.partial !== true)
  t.equal(whole.data.delta, words.join(''), 'the finished message holds the whole text')
  const partials = received.filter((e) => e.partial === true)
  t.ok(
    partials.every(
      (p, i) => words.join('').startsWith(p.data.delta) && (i === 0 || p.data.delta.length > partials[i - 1].data.delta.length)
    ),
    'each partial is a longer prefix of the text'
  )
  t.ok(received.length < 200, `a few coalesced frames, not 2,000 (${received.length})`)
  t.same(
    received.filter((e) => e.partial !== true).map((e) => e.type),
    ['TEXT_MESSAGE_CONTENT', 'TEXT_MESSAGE_END', 'RUN_FINISHED']
  )
})

t.test('run.state: a snapshot first, then each change as the JSON Patch computed for it, kept for late viewers', async (t) => {
  const app = await aguiApp(
    t,
    async (input, run) => {
      if (input.runId === 'r2') {
        await run.state.patch([{ op: 'add', path: '/done', value: true }])
        return undefined
      }
      await run.state.set({ plan: ['search'] })
      await run.state.set({ plan: ['search', 'answer'] })
      await run.state.set({ plan: ['search', 'answer'] })
      await run.state.patch([{ op: 'replace', path: '/plan/0', value: 'look' }])
      return { state: await run.state.get() }
    },
    allowAll
  )
  const finished = (list: { event: { type: string } }[]) => list.at(-1)?.event.type === 'RUN_FINISHED'
  const events = await new SseReader(await post(app, input('plans', 'r1'))).until(finished)
  t.same(
    events.slice(1).map((e) => e.event),
    [
      { type: 'STATE_SNAPSHOT', snapshot: { plan: ['search'] } },
      { type: 'STATE_DELTA', delta: [{ op: 'add', path: '/plan/1', value: 'answer' }] },
      { type: 'STATE_DELTA', delta: [{ op: 'replace', path: '/plan/0', value: 'look' }] },
      { type: 'RUN_FINISHED', threadId: 'plans', runId: 'r1', result: { state: { plan: ['look', 'answer'] } } }
    ],
    'a change that changes nothing sends nothing'
  )
  // A viewer who comes later gets the value whole from the thread's state room.
  const client = sdk(t, app, { token: sign('viewer') })
  const values: unknown[] = []
  client.liveState(aguiStateRoom('plans'), (value) => void values.push(value))
  await until(() => values.length > 0, 5000, 'the state value')
  t.same(values[0], { plan: ['look', 'answer'] })
  // The thread's next run changes that value, and tells its own stream with a snapshot first.
  const next = await new SseReader(await post(app, input('plans', 'r2'))).until(finished)
  t.same(next[1]?.event, { type: 'STATE_SNAPSHOT', snapshot: { plan: ['look', 'answer'], done: true } })
  await until(() => values.length > 1, 5000, 'the change')
  t.same(values.at(-1), { plan: ['look', 'answer'], done: true }, 'the viewer follows it')
})
