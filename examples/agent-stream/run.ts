import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { AgentEvents, EventOf, RealtimeConnection } from '../../src/index.js'

/** How long a run waits for the person's answer before it goes on as if they rejected. */
const HITL_TIMEOUT_MS = 30_000
/** How long a run waits for the client that started it to subscribe to the run's room. */
const SUBSCRIBE_WAIT_MS = 10_000
/** Runs whose events the log keeps (the oldest is forgotten first). */
const KEPT_RUNS = 50

/** An event as the run emitted it, with the seq the room gave it. */
export interface LoggedEvent {
  readonly seq: number
  readonly type: string
  readonly data: unknown
}

/**
 * What each recent run emitted, in order. A page that opens a run already going (a shared link, a reload) redraws
 * from it: it is the room's snapshot. Each entry is recorded when its emit starts, so a snapshot taken after the
 * room's position was read waits for every event up to that position.
 */
export class RunLog {
  private readonly runs = new Map<string, Array<Promise<LoggedEvent | undefined>>>()

  start(room: string): void {
    this.runs.set(room, [])
    if (this.runs.size > KEPT_RUNS) this.runs.delete(this.runs.keys().next().value as string)
  }

  record(room: string, event: EventOf<AgentEvents>, emitted: Promise<{ seq: number }>): void {
    const entry = emitted.then(
      ({ seq }) => ({ seq, type: event.type, data: event.data }),
      () => undefined
    )
    this.runs.get(room)?.push(entry)
  }

  has(room: string): boolean {
    return this.runs.has(room)
  }

  async events(room: string): Promise<LoggedEvent[]> {
    const entries = await Promise.all(this.runs.get(room) ?? [])
    return entries.filter((entry) => entry !== undefined)
  }
}

export interface Run {
  readonly app: FastifyInstance
  readonly log: RunLog
  readonly runId: string
  readonly room: string
  readonly prompt: string
  /** The first web search fails and is retried: shows a failed tool call and an error notification. */
  readonly flaky: boolean
  readonly stepMs: number
  /** The connection that sent `run:start`: the run waits until it has subscribed. */
  readonly starter: RealtimeConnection
  readonly signal: AbortSignal
}

/** Resolves once `conn` holds `room`, or after `ms` (the run then goes on; a late subscriber misses the start). */
async function waitForSubscription(conn: RealtimeConnection, room: string, ms: number, signal: AbortSignal): Promise<void> {
  const until = Date.now() + ms
  while (!conn.rooms.has(room) && Date.now() < until) await sleep(25, undefined, { signal })
}

/**
 * A simulated AI-agent run, streamed into `room`: task and node status, thoughts, a web search, a question for a
 * person (`request()`), then the result.
 */
export async function simulateRun(run: Run): Promise<void> {
  const { app, log, runId, room, prompt, stepMs, starter, signal } = run
  const step = () => sleep(stepMs, undefined, { signal })
  const emit = async (event: EventOf<AgentEvents>) => {
    const emitted = app.realtime.emit(room, event)
    log.record(room, event, emitted)
    await emitted
  }

  await waitForSubscription(starter, room, SUBSCRIBE_WAIT_MS, signal)
  await emit({ type: 'task_update', data: { taskId: runId, runId, status: 'queued', progress: 0, message: 'Queued' } })
  await step()
  await emit({ type: 'task_update', data: { taskId: runId, runId, status: 'running', progress: 5, message: 'Planning' } })
  await emit({ type: 'node_status', data: { runId, nodeId: 'plan', name: 'Plan', status: 'running' } })
  await emit({ type: 'agent:thought', data: { runId, step: 0, content: `Reading the prompt: "${prompt}"` } })
  await step()
  await emit({ type: 'agent:thought', data: { runId, step: 1, content: 'Plan: search the web, then write a short summary.' } })
  await emit({ type: 'node_status', data: { runId, nodeId: 'plan', name: 'Plan', status: 'completed', progress: 100 } })
  await emit({ type: 'task_update', data: { taskId: runId, runId, status: 'running', progress: 25, message: 'Searching' } })
  await step()

  const args = { query: prompt, limit: 3 }
  await emit({ type: 'node_status', data: { runId, nodeId: 'search', name: 'Search', status: 'running' } })
  if (run.flaky) {
    const callId = `${runId}-call-0`
    await emit({ type: 'agent:tool_call', data: { runId, callId, tool: 'web_search', status: 'pending', args } })
    await step()
    await emit({ type: 'agent:tool_call', data: { runId, callId, tool: 'web_search', status: 'running', args } })
    await step()
    const error = 'upstream timed out after 2 s'
    await emit({ type: 'agent:tool_call', data: { runId, callId, tool: 'web_search', status: 'failed', args, error, durationMs: 2000 } })
    await emit({
      type: 'error_notification',
      data: {
        severity: 'warning',
        message: `web_search failed (${error}); retrying once.`,
        code: 'tool_failed',
        source: 'web_search',
        runId
      }
    })
    await emit({ type: 'agent:thought', data: { runId, step: 2, content: 'The search timed out; trying it once more.' } })
    await step()
  }
  const callId = `${runId}-call-1`
  await emit({ type: 'agent:tool_call', data: { runId, callId, tool: 'web_search', status: 'pending', args } })
  await step()
  const started = Date.now()
  await emit({ type: 'agent:tool_call', data: { runId, callId, tool: 'web_search', status: 'running', args } })
  await step()
  const output = {
    results: [
      { title: 'Fastify v5 release notes', url: 'https://fastify.dev/docs/latest/Guides/Migration-Guide-V5/' },
      { title: 'Fastify on GitHub', url: 'https://github.com/fastify/fastify' },
      { title: 'Fastify plugins', url: 'https://fastify.dev/ecosystem/' }
    ]
  }
  await emit({
    type: 'agent:tool_call',
    data: { runId, callId, tool: 'web_search', status: 'succeeded', args, output, durationMs: Date.now() - started }
  })
  await emit({ type: 'node_status', data: { runId, nodeId: 'search', name: 'Search', status: 'completed', progress: 100 } })
  await emit({ type: 'task_update', data: { taskId: runId, runId, status: 'running', progress: 60, message: 'Writing' } })
  await step()

  const summary = `Found ${output.results.length} sources on "${prompt}"; the migration guide lists the breaking changes.`
  await emit({ type: 'node_status', data: { runId, nodeId: 'answer', name: 'Answer', status: 'running' } })
  await emit({
    type: 'agent:thought',
    data: { runId, step: run.flaky ? 3 : 2, content: 'Drafted a summary; asking before publishing it.' }
  })
  await emit({ type: 'task_update', data: { taskId: runId, runId, status: 'waiting', progress: 80, message: 'Waiting for approval' } })

  const approved = await askToPublish(app, emit, room, runId)
  if (signal.aborted) return

  await emit({
    type: 'agent:result',
    data: { runId, output: { summary, sources: output.results, published: approved }, summary: approved ? summary : 'Not published.' }
  })
  await emit({ type: 'node_status', data: { runId, nodeId: 'answer', name: 'Answer', status: 'completed', progress: 100 } })
  await emit({ type: 'task_update', data: { taskId: runId, runId, status: 'succeeded', progress: 100, message: 'Done' } })
}

/** The human-in-the-loop step: true when someone answered `approve`. No answer in time counts as a rejection. */
async function askToPublish(
  app: FastifyInstance,
  emit: (event: EventOf<AgentEvents>) => Promise<void>,
  room: string,
  runId: string
): Promise<boolean> {
  const requestId = `${runId}-hitl-1`
  try {
    const reply = await app.realtime.request<{ optionId?: unknown }>(
      room,
      {
        type: 'hitl_request',
        data: {
          requestId,
          runId,
          question: 'Publish the summary?',
          options: [
            { id: 'approve', label: 'Approve', style: 'primary' },
            { id: 'reject', label: 'Reject' }
          ],
          timeoutMs: HITL_TIMEOUT_MS
        }
      },
      { timeout: HITL_TIMEOUT_MS }
    )
    return reply?.optionId === 'approve'
  } catch (err) {
    // Timeout, nobody subscribed, the client answered with an error, or every asked connection closed.
    app.log.info({ runId, reason: (err as Error).message }, 'approval not received; treating it as rejected')
    await emit({
      type: 'error_notification',
      data: { severity: 'warning', message: 'No approval received; the summary was not published.', code: 'hitl_unanswered', runId }
    })
    return false
  }
}
