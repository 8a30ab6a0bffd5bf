import t from 'tap'
import { RealtimeAgent } from '../../src/ag-ui/client.js'
import { sdk, until } from '../helpers/client.js'
import { sign } from '../helpers/index.js'
import { aguiApp, httpUrl, readSse } from './helpers.js'

t.test('RealtimeAgent runs over the WebSocket, resumes across a reconnect mid-run, and misses no event', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const app = await aguiApp(
    t,
    async (_input, run) => {
      const call = run.toolCall('search')
      for (let i = 0; i < 20; i++) {
        await call.args(`${i},`)
        if (i === 4) await gate
      }
      await call.result('found')
      const text = run.text()
      text.append('All ')
      text.append('done.')
      await text.end()
    },
    { authorize: () => true }
  )
  const client = sdk(t, app, { token: sign('alice') })
  const agent = new RealtimeAgent({ client, url: httpUrl(app), threadId: 'ws' })
  const seen: any[] = []
  const finished = agent.runAgent({ runId: 'r1' }, { onEvent: ({ event }) => void seen.push(event) })
  await until(() => seen.filter((e) => e.type === 'TOOL_CALL_ARGS').length === 5, 5000, 'five deltas')
  const before = client.connectionId
  app.realtime.connection(before as string)?.close(4000, 'test reconnect')
  await until(() => client.connectionId !== before && client.state === 'open', 5000, 'a new connection')
  release()
  await finished
  const logged = await readSse(await fetch(`${httpUrl(app)}?threadId=ws&runId=r1`))
  t.same(
    seen,
    logged.map((e) => e.event),
    'every event of the run, once, in order'
  )
  const assistant = agent.messages.filter((m) => m.role === 'assistant') as any[]
  t.equal(assistant[0].toolCalls[0].function.arguments, Array.from({ length: 20 }, (_, i) => `${i},`).join(''))
  t.equal(assistant.at(-1).content, 'All done.')
})

t.test('RealtimeAgent fails the run when the route refuses it, and abortRun() cancels the run on the server', async (t) => {
  let aborted = false
  const app = await aguiApp(
    t,
    async (_input, run, signal) => {
      await run.emit({ type: 'STEP_STARTED', stepName: 'wait' })
      await new Promise((resolve) => signal.addEventListener('abort', resolve))
      aborted = true
    },
    { authorize: () => true }
  )
  const client = sdk(t, app, { token: sign('alice') })
  const invalid = new RealtimeAgent({ client, url: httpUrl(app), threadId: 'bad{thread}' })
  await t.rejects(invalid.runAgent({ runId: 'r1' }), { code: 'invalid_room' })
  const taken = new RealtimeAgent({ client, url: httpUrl(app), threadId: 'stop' })
  let started = false
  const first = taken
    .runAgent(
      { runId: 'r0' },
      {
        onRunStartedEvent: () => {
          started = true
        }
      }
    )
    .catch(() => undefined)
  // Another page: one client holds a room once.
  const again = new RealtimeAgent({ client: sdk(t, app, { token: sign('bob') }), url: httpUrl(app), threadId: 'stop' })
  await until(() => started, 5000, 'the first run')
  await t.rejects(again.runAgent({ runId: 'r0' }), /HTTP 409/)
  taken.abortRun()
  await first

  const agent = new RealtimeAgent({ client, url: httpUrl(app), threadId: 'stop' })
  const seen: string[] = []
  const running = agent.runAgent({ runId: 'r1' }, { onEvent: ({ event }) => void seen.push(event.type) }).catch(() => undefined)
  await until(() => seen.includes('STEP_STARTED'), 5000, 'the run to start')
  agent.abortRun()
  await running
  await until(() => aborted, 5000, 'the server run to be cancelled')
  aborted = false
  const logged = await readSse(await fetch(`${httpUrl(app)}?threadId=stop&runId=r1`))
  t.equal(logged.at(-1)?.event.code, 'cancelled')
})
