import t from 'tap'
import { sdk, until } from '../helpers/client.js'
import { sign } from '../helpers/index.js'
import { aguiApp, input, post, readSse, SseReader } from './helpers.js'

const allowAll = { authorize: () => true }

/** Asks for an approval, then says what it got. A run that resumes interrupts just finishes. */
const approval = async (input: any, run: any) => {
  if (input.resume !== undefined) return 'resumed'
  const answer = await run.interrupt({ reason: 'approval', message: 'Deploy to production?' })
  await run.emit({ type: 'CUSTOM', name: 'answer', value: answer })
}

const custom = (events: any[], name: string) => events.find((e) => e.event.type === 'CUSTOM' && e.event.name === name)?.event

t.test('an interrupt answered from two clients at once: exactly one wins, the other gets already_answered', async (t) => {
  const app = await aguiApp(t, approval, allowAll)
  const sse = new SseReader(await post(app, input('hitl', 'r1')))
  const alice = sdk(t, app, { token: sign('alice') })
  const bob = sdk(t, app, { token: sign('bob') })
  alice.subscribe('agui:hitl')
  bob.subscribe('agui:hitl')
  await until(() => alice.questions().length === 1 && bob.questions().length === 1, 5000, 'the interrupt on both')
  const question = alice.questions()[0] as any
  t.equal(question.type, 'CUSTOM')
  t.equal(question.data.name, 'interrupt')
  t.equal(question.data.value.reason, 'approval')
  const answers = await Promise.allSettled([
    // A bare payload resolves the interrupt, as a resume entry { status: 'resolved', payload } does.
    alice.reply(question.id, { by: 'alice' }),
    bob.reply(question.id, { status: 'resolved', payload: { by: 'bob' } })
  ])
  const won = answers.filter((a) => a.status === 'fulfilled')
  const lost = answers.filter((a) => a.status === 'rejected') as PromiseRejectedResult[]
  t.equal(won.length, 1)
  t.equal(lost.length, 1)
  t.equal(lost[0]?.reason.code, 'already_answered')
  const events = await sse.until()
  const interrupt = custom(events, 'interrupt')
  t.equal(interrupt.value.id.startsWith('int.'), true, 'the HTTP client sees the interrupt too')
  const winner = answers[0]?.status === 'fulfilled' ? 'alice' : 'bob'
  t.same(custom(events, 'answer').value, { status: 'resolved', payload: { by: winner } })
  t.equal(events.at(-1)?.event.type, 'RUN_FINISHED')
})

t.test('a new run whose input carries resume answers the interrupt; resuming it again is already_answered', async (t) => {
  const app = await aguiApp(t, approval, allowAll)
  const sse = new SseReader(await post(app, input('resume', 'r1')))
  const events = await sse.until((events) => custom(events, 'interrupt') !== undefined)
  const { id } = custom(events, 'interrupt').value
  const entry = { interruptId: id, status: 'resolved', payload: { approved: true } }
  const resumed = await readSse(await post(app, input('resume', 'r2', { resume: [entry] })))
  t.same(
    resumed.map((e) => e.event.type),
    ['RUN_STARTED', 'RUN_FINISHED']
  )
  t.equal(resumed.at(-1)?.event.result, 'resumed')
  const rest = await sse.until()
  t.same(custom(rest, 'answer').value, { status: 'resolved', payload: { approved: true } })
  t.equal(rest.at(-1)?.event.type, 'RUN_FINISHED')

  const again = await post(app, input('resume', 'r3', { resume: [entry] }))
  t.equal(again.status, 409)
  t.equal((await again.json()).code, 'already_answered')
  const unknown = await post(app, input('resume', 'r4', { resume: [{ ...entry, interruptId: 'int.none' }] }))
  t.equal(unknown.status, 404)
  t.equal((await unknown.json()).code, 'unknown_interrupt')
})

t.test('cancelling from a second client aborts signal and ends the run with RUN_ERROR cancelled', async (t) => {
  let aborted: unknown
  const app = await aguiApp(
    t,
    async (_input, run, signal) => {
      await run.emit({ type: 'STEP_STARTED', stepName: 'wait' })
      await new Promise((resolve) => signal.addEventListener('abort', resolve))
      aborted = signal.reason
    },
    allowAll
  )
  const sse = new SseReader(await post(app, input('cx', 'r1')))
  await sse.until((events) => events.some((e) => e.event.type === 'STEP_STARTED'))
  const other = sdk(t, app, { token: sign('bob') })
  await other.cancel('agui:cx', 'r1')
  const events = await sse.until()
  t.same(events.at(-1)?.event, { type: 'RUN_ERROR', code: 'cancelled', message: 'the run was cancelled' })
  t.equal((aborted as { code: string }).code, 'FST_REALTIME_RUN_CANCELLED')
})

t.test('a handler that throws ends the run with RUN_ERROR internal, its details only in the log', async (t) => {
  const app = await aguiApp(t, async () => {
    throw new Error('secret database detail')
  })
  const events = await readSse(await post(app, input('boom', 'r1')))
  t.same(
    events.map((e) => e.event),
    [events[0]?.event, { type: 'RUN_ERROR', code: 'internal', message: 'internal error' }]
  )
})

t.test('an interrupt with a timeout says when it expires and rejects unanswered; null and payload-less answers', async (t) => {
  const answers: unknown[] = []
  const app = await aguiApp(
    t,
    async (input: any, run) => {
      if (input.resume !== undefined) return
      const expired = await run.interrupt({ reason: 'soon', timeout: 50 }).catch((err: { code: string }) => err.code)
      answers.push(expired)
      answers.push(await run.interrupt({ reason: 'null' }))
      answers.push(await run.interrupt({ reason: 'cancel' }))
    },
    allowAll
  )
  const sse = new SseReader(await post(app, input('answers', 'r1')))
  const client = sdk(t, app, { token: sign('alice') })
  client.subscribe('agui:answers')
  await until(() => client.questions().some((q: any) => q.data.value.reason === 'null'), 5000, 'the second interrupt')
  await client.reply((client.questions().find((q: any) => q.data.value.reason === 'null') as any).id, null)
  const events = await sse.until((events) => events.filter((e) => e.event.name === 'interrupt').length === 3)
  const interrupts = events.filter((e) => e.event.name === 'interrupt').map((e) => e.event.value)
  t.ok(Date.parse(interrupts[0].expiresAt) > Date.now() - 60_000, 'expiresAt is set')
  t.notOk('expiresAt' in interrupts[1])
  const entry = { interruptId: interrupts[2].id, status: 'cancelled' }
  await readSse(await post(app, input('answers', 'r2', { resume: [entry] })))
  await sse.until()
  t.same(answers, ['FST_REALTIME_REQUEST_TIMEOUT', { status: 'resolved', payload: null }, { status: 'cancelled' }])
})
