import { HttpAgent } from '@ag-ui/client'
import { EventSchema } from '@ag-ui/core/schemas'
import t from 'tap'
import { aguiApp, httpUrl, input, post, readSse } from './helpers.js'

const story = async (_input: unknown, run: any) => {
  await run.emit({ type: 'STATE_SNAPSHOT', snapshot: { plan: [] } })
  const text = run.text()
  for (const word of ['Looking ', 'up ', 'the ', 'weather.']) text.append(word)
  await text.end()
  const call = run.toolCall('weather', { parentMessageId: text.messageId })
  await call.args('{"city":')
  await call.args('"Paris"}')
  await call.result({ celsius: 21 })
  await run.emit({ type: 'STATE_DELTA', delta: [{ op: 'add', path: '/plan/-', value: 'answer' }] })
  return { ok: true }
}

t.test("@ag-ui/client's HttpAgent runs an agent against the route and gets text, tool calls, state and RUN_FINISHED", async (t) => {
  const app = await aguiApp(t, story)
  const agent = new HttpAgent({ url: httpUrl(app), threadId: 'th1' })
  const seen: string[] = []
  const result = await agent.runAgent({ runId: 'r1' }, { onEvent: ({ event }) => void seen.push(event.type) })
  t.same(seen, [
    'RUN_STARTED',
    'STATE_SNAPSHOT',
    'TEXT_MESSAGE_START',
    'TEXT_MESSAGE_CONTENT',
    'TEXT_MESSAGE_END',
    'TOOL_CALL_START',
    'TOOL_CALL_ARGS',
    'TOOL_CALL_ARGS',
    'TOOL_CALL_END',
    'TOOL_CALL_RESULT',
    'STATE_DELTA',
    'RUN_FINISHED'
  ])
  t.same(result.result, { ok: true })
  const assistant = agent.messages.find((m) => m.role === 'assistant') as any
  t.equal(assistant.content, 'Looking up the weather.')
  t.same(assistant.toolCalls[0].function, { name: 'weather', arguments: '{"city":"Paris"}' })
  const tool = agent.messages.find((m) => m.role === 'tool') as any
  t.equal(tool.content, '{"celsius":21}')
  t.same(agent.state, { plan: ['answer'] })
})

t.test('every event of the stream has an id and parses with the @ag-ui/core schemas', async (t) => {
  const app = await aguiApp(t, story)
  const res = await post(app, input('th2', 'r1'))
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  t.equal(res.headers.get('cache-control'), 'no-cache')
  t.equal(res.headers.get('x-accel-buffering'), 'no')
  const events = await readSse(res)
  t.equal(events.at(-1)?.event.type, 'RUN_FINISHED')
  let previous: string | undefined
  for (const { id, event } of events) {
    // The reader reports the last id in effect: an event without its own would repeat the one before.
    t.match(id, /^\d+:/, `${event.type} has an id`)
    t.not(id, previous, `${event.type} has its own id`)
    previous = id
    const parsed = EventSchema.safeParse(event)
    t.ok(parsed.success, `${event.type} parses: ${parsed.error?.message ?? ''}`)
  }
})
