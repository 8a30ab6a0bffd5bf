import t from 'tap'
import { memoryAdapter } from '../../src/adapters/memory.js'
import { redisAdapter } from '../../src/adapters/redis.js'
import { aguiLogRoom } from '../../src/ag-ui/rooms.js'
import { requireRedis, startRedis } from '../helpers/redis.js'
import { aguiApp, httpUrl, input, post, readSse, type SseEvent } from './helpers.js'

/** A run that streams 40 tool-call deltas, halting after the 10th until `release()`: the stream is cut there. */
function gatedRun() {
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const handler = async (_input: unknown, run: any) => {
    const call = run.toolCall('search')
    for (let i = 0; i < 40; i++) {
      await call.args(`${i},`)
      if (i === 9) await gate
    }
    await call.result('done')
  }
  return { handler, release }
}

const reattach = (url: string, threadId: string, runId: string, lastEventId?: string) =>
  fetch(`${url}?threadId=${threadId}&runId=${runId}`, {
    headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId }
  })

const tenArgs = (events: SseEvent[]) => events.filter((e) => e.event.type === 'TOOL_CALL_ARGS').length === 10

t.test('a stream cut mid-run and re-attached with Last-Event-ID yields exactly the events of the whole run', async (t) => {
  const { handler, release } = gatedRun()
  const app = await aguiApp(t, handler)
  const first = await readSse(await post(app, input('cut', 'r1')), tenArgs)
  release()
  const last = first.at(-1)?.id as string
  const rest = await readSse(await reattach(httpUrl(app), 'cut', 'r1', last))
  const whole = await readSse(await reattach(httpUrl(app), 'cut', 'r1'))
  t.equal(whole.at(-1)?.event.type, 'RUN_FINISHED')
  t.same([...first, ...rest], whole, 'no gap, no duplicate, in order')
  t.equal(whole.length, 1 + 1 + 40 + 1 + 1 + 1)
})

t.test('a re-attach to a finished run replays its tail and ends; an unknown run is 404, a bad id 400', async (t) => {
  const { handler, release } = gatedRun()
  release()
  const app = await aguiApp(t, handler)
  const whole = await readSse(await post(app, input('done', 'r1')))
  const tail = await readSse(await reattach(httpUrl(app), 'done', 'r1', whole.at(-3)?.id))
  t.same(tail, whole.slice(-2))
  const unknown = await reattach(httpUrl(app), 'done', 'nope')
  t.equal(unknown.status, 404)
  t.equal((await unknown.json()).code, 'unknown_run')
  const bad = await reattach(httpUrl(app), 'done', 'r1', 'garbage')
  t.equal(bad.status, 400)
  t.equal((await bad.json()).code, 'invalid_last_event_id')
  const gone = await reattach(httpUrl(app), 'done', 'r1', '1:another-epoch')
  t.equal(gone.status, 410)
  t.equal((await gone.json()).code, 'resume_gap')
  const again = await post(app, input('done', 'r1'))
  t.equal(again.status, 409, 'a run id is used once')
  t.equal((await again.json()).code, 'run_exists')
})

t.test('with the Redis adapter, a run cut on one instance is re-attached on another, to the end', { skip: requireRedis(t) }, async (t) => {
  const redis = await startRedis(t)
  const { handler, release } = gatedRun()
  const adapter = () => redisAdapter({ url: redis.url, keyPrefix: redis.prefix })
  const a = await aguiApp(t, handler, { adapter: adapter() })
  const b = await aguiApp(t, async () => undefined, { adapter: adapter() })
  const first = await readSse(await post(a, input('multi', 'r1')), tenArgs)
  const resumed = reattach(httpUrl(b), 'multi', 'r1', first.at(-1)?.id)
  const rest = readSse(await resumed)
  release()
  const all = [...first, ...(await rest)]
  const whole = await readSse(await reattach(httpUrl(a), 'multi', 'r1'))
  t.same(all, whole)
  t.equal(whole.at(-1)?.event.type, 'RUN_FINISHED')
})

t.test(
  'with the Redis adapter, one run posted to two instances at once runs once; the other is a 409 run_exists',
  { skip: requireRedis(t) },
  async (t) => {
    const redis = await startRedis(t)
    const adapter = () => redisAdapter({ url: redis.url, keyPrefix: redis.prefix })
    let runs = 0
    const handler = async () => {
      runs++
    }
    const apps = [await aguiApp(t, handler, { adapter: adapter() }), await aguiApp(t, handler, { adapter: adapter() })]
    // Several runs, each posted to both instances in the same turn: the claims race in Redis, not in one process.
    for (let i = 0; i < 5; i++) {
      const answers = await Promise.all(apps.map((app) => post(app, input('race', `r${i}`))))
      t.same(answers.map((res) => res.status).sort(), [200, 409], `run r${i}: one started, one refused`)
      const refused = answers.find((res) => res.status === 409) as Response
      t.equal((await refused.json()).code, 'run_exists')
      const events = await readSse(answers.find((res) => res.status === 200) as Response)
      t.equal(events.at(-1)?.event.type, 'RUN_FINISHED')
    }
    t.equal(runs, 5, 'each run ran once')
  }
)

t.test('a run whose claim expired before its history is still refused: the history says it ran', async (t) => {
  const adapter = memoryAdapter()
  const app = await aguiApp(t, async () => undefined, { adapter })
  t.equal((await readSse(await post(app, input('lapsed', 'r1')))).at(-1)?.event.type, 'RUN_FINISHED')
  // The claim lasts the log room's ttl; here it went first, as it may when the history is given a longer one.
  await adapter.stateWrite(aguiLogRoom('lapsed', 'r1'), { 'r:claim': null }, 60_000)
  const again = await post(app, input('lapsed', 'r1'))
  t.equal(again.status, 409)
  t.equal((await again.json()).code, 'run_exists')
})
