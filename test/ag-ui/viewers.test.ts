import t from 'tap'
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
