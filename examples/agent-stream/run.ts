import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { AguiRun, RunAgentInput } from '../../src/ag-ui/index.js'
import type { Static } from '../../src/index.js'

/** How long a run waits for the person's approval before it goes on as if they rejected. */
const APPROVAL_TIMEOUT_MS = 30_000

const DEFAULT_PROMPT = 'What changed in Fastify 5?'

/** The steps of a run, as its plan (the thread's state) lists them. */
const STEPS = [
  { id: 'plan', name: 'Plan' },
  { id: 'search', name: 'Search' },
  { id: 'answer', name: 'Answer' }
] as const
type StepId = (typeof STEPS)[number]['id']
type StepStatus = 'pending' | 'running' | 'completed'

/** The thread's state while a run goes: the plan a page draws its progress bar and steps from. */
export interface Plan {
  prompt: string
  status: 'running' | 'waiting' | 'done'
  progress: number
  message: string
  steps: Array<{ id: StepId; name: string; status: StepStatus }>
}

/** The approval the run asks for; a page draws its buttons from `metadata.options`. */
const APPROVAL = {
  reason: 'approval',
  message: 'Publish the summary?',
  responseSchema: { type: 'object', properties: { approved: { type: 'boolean' } }, required: ['approved'] },
  metadata: {
    options: [
      { id: 'approve', label: 'Approve', style: 'primary' },
      { id: 'reject', label: 'Reject' }
    ]
  }
}

const SOURCES = [
  { title: 'Fastify v5 release notes', url: 'https://fastify.dev/docs/latest/Guides/Migration-Guide-V5/' },
  { title: 'Fastify on GitHub', url: 'https://github.com/fastify/fastify' },
  { title: 'Fastify plugins', url: 'https://fastify.dev/ecosystem/' }
]

export interface SimulatedRun {
  readonly input: Static<typeof RunAgentInput>
  readonly run: AguiRun
  /** Pause between two steps, in ms; a token of text takes a sixteenth of it. */
  readonly stepMs: number
  /** Aborted by a cancel or the app closing: the run stops at its next pause. */
  readonly signal: AbortSignal
  readonly log: FastifyBaseLogger
}

/** The prompt: the input's last user message. */
function promptOf(input: Static<typeof RunAgentInput>): string {
  const last = input.messages.filter((m) => m.role === 'user').at(-1)
  const content = typeof last?.content === 'string' ? last.content.trim().slice(0, 500) : ''
  return content === '' ? DEFAULT_PROMPT : content
}

/** `input.forwardedProps.flaky`: the first web search fails and is retried. */
function flakyOf(input: Static<typeof RunAgentInput>): boolean {
  const props = input.forwardedProps as { flaky?: unknown } | undefined
  return props?.flaky === true
}

/** `text` cut in `count` pieces of about the same length, as a model streams a tool call's arguments. */
function pieces(text: string, count: number): string[] {
  const size = Math.ceil(text.length / count)
  return Array.from({ length: Math.ceil(text.length / size) }, (_, i) => text.slice(i * size, (i + 1) * size))
}

/**
 * A simulated AI-agent run over AG-UI: it reads the prompt and plans, searches the web (with `flaky`, a first search
 * fails and is retried), drafts a summary, asks for approval to publish it, and returns the result (RUN_FINISHED's
 * `result`). Its thoughts are text messages streamed token by token, the search a tool call with argument deltas,
 * and its plan the thread's state (STATE_SNAPSHOT, then STATE_DELTA).
 */
export async function simulateRun({ input, run, stepMs, signal, log }: SimulatedRun): Promise<unknown> {
  const prompt = promptOf(input)
  const tokenMs = Math.max(5, Math.round(stepMs / 16))
  const pause = (ms: number) => sleep(ms, undefined, { signal })
  const step = () => pause(stepMs)

  /** One thought: an assistant text message, one word at a time. */
  const think = async (text: string): Promise<string> => {
    const message = run.text()
    for (const token of text.match(/\S+\s*/g) ?? []) {
      message.append(token)
      await pause(tokenMs)
    }
    await message.end()
    return message.messageId
  }

  const stepIndex = (id: StepId) => STEPS.findIndex((s) => s.id === id)
  const setStep = (id: StepId, status: StepStatus) => ({ op: 'replace' as const, path: `/steps/${stepIndex(id)}/status`, value: status })
  const setProgress = (progress: number, message: string) => [
    { op: 'replace' as const, path: '/progress', value: progress },
    { op: 'replace' as const, path: '/message', value: message }
  ]
  const startStep = (id: StepId) => run.emit({ type: 'STEP_STARTED', stepName: id })
  const finishStep = (id: StepId) => run.emit({ type: 'STEP_FINISHED', stepName: id })

  /** One web search: the tool call's arguments streamed in pieces, then its result. */
  const search = async (parentMessageId: string, fails: boolean): Promise<void> => {
    const call = run.toolCall('web_search', { parentMessageId })
    for (const piece of pieces(JSON.stringify({ query: prompt, limit: 3 }), 4)) {
      await call.args(piece)
      await pause(tokenMs)
    }
    await call.end()
    await step()
    await call.result(fails ? { error: 'upstream timed out after 2 s' } : { results: SOURCES })
  }

  const plan: Plan = {
    prompt,
    status: 'running',
    progress: 5,
    message: 'Planning',
    steps: STEPS.map((s) => ({ ...s, status: s.id === 'plan' ? 'running' : 'pending' }))
  }
  await run.state.set(plan)
  await startStep('plan')
  await think(`Reading the prompt: "${prompt}"`)
  await step()
  let thought = await think('Plan: search the web, then write a short summary.')
  await finishStep('plan')
  await run.state.patch([setStep('plan', 'completed'), setStep('search', 'running'), ...setProgress(25, 'Searching')])

  await startStep('search')
  await step()
  if (flakyOf(input)) {
    await search(thought, true)
    await run.emit({
      type: 'CUSTOM',
      name: 'notice',
      value: { severity: 'warning', message: 'web_search failed (upstream timed out after 2 s); retrying once.' }
    })
    thought = await think('The search timed out; trying it once more.')
    await step()
  }
  await search(thought, false)
  await finishStep('search')
  await run.state.patch([setStep('search', 'completed'), setStep('answer', 'running'), ...setProgress(60, 'Writing')])

  await startStep('answer')
  await step()
  const summary = `Found ${SOURCES.length} sources on "${prompt}"; the migration guide lists the breaking changes.`
  await think('Drafted a summary; asking before publishing it.')
  await run.state.patch([{ op: 'replace', path: '/status', value: 'waiting' }, ...setProgress(80, 'Waiting for approval')])

  const approved = await askToPublish(run, log)
  await run.state.patch([
    { op: 'replace', path: '/status', value: 'done' },
    setStep('answer', 'completed'),
    ...setProgress(100, approved ? 'Published' : 'Not published')
  ])
  await finishStep('answer')
  return { summary: approved ? summary : 'Not published.', draft: summary, sources: SOURCES, published: approved }
}

/** The human-in-the-loop step: true when someone approved. No answer in time counts as a rejection. */
async function askToPublish(run: AguiRun, log: FastifyBaseLogger): Promise<boolean> {
  try {
    const answer = await run.interrupt({ ...APPROVAL, timeout: APPROVAL_TIMEOUT_MS })
    return answer.status === 'resolved' && (answer.payload as { approved?: unknown } | undefined)?.approved === true
  } catch (err) {
    if ((err as { code?: string }).code !== 'FST_REALTIME_REQUEST_TIMEOUT') throw err
    log.info({ threadId: run.threadId, runId: run.runId }, 'approval not received; treating it as rejected')
    await run.emit({
      type: 'CUSTOM',
      name: 'notice',
      value: { severity: 'warning', message: 'No approval received; the summary was not published.' }
    })
    return false
  }
}
