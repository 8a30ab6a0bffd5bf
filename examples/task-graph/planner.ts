import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import { type Static, Type } from '../../src/index.js'

/** A node of the graph. `deps` name the nodes that must be done before it starts. */
const GraphNode = Type.Object({
  id: Type.String(),
  name: Type.String(),
  deps: Type.Array(Type.String()),
  status: Type.Union([Type.Literal('pending'), Type.Literal('running'), Type.Literal('done'), Type.Literal('failed')]),
  progress: Type.Integer({ minimum: 0, maximum: 100 }),
  attempt: Type.Integer({ minimum: 0 }),
  note: Type.Optional(Type.String())
})

/** The human-in-the-loop question as the page draws it; the question itself is an `ask()` of the events room. */
const Review = Type.Object({
  requestId: Type.String(),
  text: Type.String(),
  options: Type.Array(Type.Object({ id: Type.String(), label: Type.String() })),
  fallback: Type.String(),
  deadline: Type.String(),
  status: Type.Union([Type.Literal('open'), Type.Literal('answered'), Type.Literal('timeout')]),
  answer: Type.Optional(Type.String())
})

/** The whole graph: the value of the state room `graph:<id>`. Every change is checked against it. */
export const Graph = Type.Object({
  id: Type.String(),
  goal: Type.String(),
  status: Type.Union([Type.Literal('planning'), Type.Literal('running'), Type.Literal('waiting'), Type.Literal('done')]),
  progress: Type.Integer({ minimum: 0, maximum: 100 }),
  order: Type.Array(Type.String()),
  nodes: Type.Record(Type.String(), GraphNode),
  review: Type.Optional(Review)
})
export type Graph = Static<typeof Graph>
type Node = Static<typeof GraphNode>

export const graphRoom = (id: string) => `graph:${id}`
export const eventsRoom = (id: string) => `tasks:${id}`

/** The plan every goal decomposes into. `flaky` fails its first attempt; `asks` waits for a person's review. */
const PLAN: ReadonlyArray<{ id: string; name: string; deps: string[]; flaky?: true; asks?: true }> = [
  { id: 'scope', name: 'Scope the question', deps: [] },
  { id: 'sources', name: 'Gather sources', deps: ['scope'] },
  { id: 'competitors', name: 'Map competitors', deps: ['sources'] },
  { id: 'pricing', name: 'Collect pricing', deps: ['sources'], flaky: true },
  { id: 'outline', name: 'Draft the outline', deps: ['competitors', 'pricing'] },
  { id: 'charts', name: 'Draw the charts', deps: ['pricing'] },
  { id: 'review', name: 'Review the outline', deps: ['outline'], asks: true },
  { id: 'write', name: 'Write the report', deps: ['review'] },
  { id: 'assemble', name: 'Assemble and publish', deps: ['write', 'charts'] }
]

/** The review's choices; unanswered in time, the planner goes on with `approve`. */
const REVIEW_FALLBACK = { id: 'approve', label: 'Approve the outline' }
const REVIEW_OPTIONS = [REVIEW_FALLBACK, { id: 'risks', label: 'Add a risks section' }]

export interface PlanOptions {
  app: FastifyInstance
  id: string
  goal: string
  /** Pause between two steps of the simulation, in ms. */
  stepMs: number
  /** How long the review question waits for an answer, in ms. */
  answerWithinMs: number
  signal: AbortSignal
  log: FastifyBaseLogger
}

/**
 * Decomposes the goal into a graph and runs it: each node starts once its dependencies are done, and nodes without a
 * dependency between them run side by side. Every change goes through the state room, so the pages get JSON Patches.
 */
export async function runPlan({ app, id, goal, stepMs, answerWithinMs, signal, log }: PlanOptions): Promise<void> {
  const state = app.realtime.state(graphRoom(id), { schema: Graph })
  const room = eventsRoom(id)
  const pause = () =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason)
      setTimeout(resolve, stepMs)
    })
  const task = (status: 'running' | 'waiting' | 'succeeded', progress: number, message: string) =>
    app.realtime.emit(room, { type: 'task_update', data: { taskId: id, runId: id, status, progress, message } })

  await state.set({ id, goal, status: 'planning', progress: 0, order: [], nodes: {} })
  await task('running', 0, `Planning: ${goal}`)
  // The decomposition, one node at a time: each arrives as an `add` operation.
  for (const step of PLAN) {
    await pause()
    const node: Node = { id: step.id, name: step.name, deps: [...step.deps], status: 'pending', progress: 0, attempt: 0 }
    await state.patch([
      { op: 'add', path: `/nodes/${step.id}`, value: node },
      { op: 'add', path: '/order/-', value: step.id }
    ])
  }
  await state.patch([{ op: 'replace', path: '/status', value: 'running' }])

  const nodeStatus = (node: Node, status: 'pending' | 'running' | 'completed' | 'failed', progress: number) =>
    app.realtime.emit(room, { type: 'node_status', data: { runId: id, nodeId: node.id, name: node.name, status, progress } })

  /** Runs one node to done: progress in four steps; a flaky node fails its first attempt and is retried. */
  const runNode = async (node: Node): Promise<void> => {
    const flaky = PLAN.find((step) => step.id === node.id)?.flaky === true
    for (let attempt = 1; ; attempt++) {
      await state.patch([
        { op: 'replace', path: `/nodes/${node.id}/status`, value: 'running' },
        { op: 'replace', path: `/nodes/${node.id}/attempt`, value: attempt },
        { op: 'replace', path: `/nodes/${node.id}/progress`, value: 0 }
      ])
      await nodeStatus(node, 'running', 0)
      for (const progress of [25, 50, 75]) {
        await pause()
        if (flaky && attempt === 1 && progress === 50) break
        await state.patch([{ op: 'replace', path: `/nodes/${node.id}/progress`, value: progress }])
      }
      if (flaky && attempt === 1) {
        await state.patch([
          { op: 'replace', path: `/nodes/${node.id}/status`, value: 'failed' },
          { op: 'add', path: `/nodes/${node.id}/note`, value: 'The pricing API answered 429; retrying' }
        ])
        await nodeStatus(node, 'failed', 25)
        await app.realtime.emit(room, {
          type: 'error_notification',
          data: { severity: 'warning', message: `${node.name} failed (HTTP 429); retrying once`, source: node.id, runId: id }
        })
        await pause()
        continue
      }
      if (PLAN.find((step) => step.id === node.id)?.asks === true) await review(node)
      await pause()
      await state.patch([
        { op: 'replace', path: `/nodes/${node.id}/status`, value: 'done' },
        { op: 'replace', path: `/nodes/${node.id}/progress`, value: 100 }
      ])
      await nodeStatus(node, 'completed', 100)
      return
    }
  }

  /** Asks a person to review the outline; no answer in time, the planner goes on with the fallback. */
  const review = async (node: Node): Promise<void> => {
    const requestId = `${id}-review`
    const question = 'The outline is ready. Approve it, or add a section on risks first?'
    const deadline = new Date(Date.now() + answerWithinMs).toISOString()
    const fallback = REVIEW_FALLBACK
    await state.patch([
      { op: 'replace', path: '/status', value: 'waiting' },
      {
        op: 'add',
        path: '/review',
        value: { requestId, text: question, options: REVIEW_OPTIONS, fallback: fallback.id, deadline, status: 'open' }
      }
    ])
    await task('waiting', progressOf(await state.get()), 'Waiting for a review of the outline')
    let answer = fallback.id
    let status: 'answered' | 'timeout' = 'answered'
    try {
      const reply = await app.realtime.ask<{ optionId?: unknown }>(
        room,
        { type: 'hitl_request', data: { requestId, runId: id, question, options: REVIEW_OPTIONS, timeoutMs: answerWithinMs } },
        { timeout: answerWithinMs, idempotencyKey: `${id}/review` }
      )
      const chosen = REVIEW_OPTIONS.find((option) => option.id === reply?.optionId)
      if (chosen === undefined) log.warn({ reply }, 'the review answer names no option; going on with the fallback')
      else answer = chosen.id
    } catch (err) {
      if ((err as { code?: string }).code !== 'FST_REALTIME_REQUEST_TIMEOUT') throw err
      status = 'timeout'
      await app.realtime.emit(room, {
        type: 'error_notification',
        data: {
          severity: 'info',
          message: `No answer in ${answerWithinMs / 1000} s: going on with "${fallback.id}"`,
          source: node.id,
          runId: id
        }
      })
    }
    const ops = [
      { op: 'replace', path: '/review/status', value: status },
      { op: 'add', path: '/review/answer', value: answer },
      { op: 'replace', path: '/status', value: 'running' }
    ] as const
    // The graph changes with the answer: a new node, and the report now waits for it.
    if (answer === 'risks') {
      const risks: Node = { id: 'risks', name: 'Write the risks section', deps: ['review'], status: 'pending', progress: 0, attempt: 0 }
      await state.patch([
        ...ops,
        { op: 'add', path: '/nodes/risks', value: risks },
        { op: 'add', path: '/order/-', value: 'risks' },
        { op: 'add', path: '/nodes/write/deps/-', value: 'risks' }
      ])
    } else await state.patch(ops)
  }

  // The scheduler: start every pending node whose dependencies are done, until every node is done.
  const running = new Map<string, Promise<void>>()
  for (;;) {
    const graph = (await state.get()) as Graph
    const nodes = graph.order.map((nodeId) => graph.nodes[nodeId] as Node)
    if (nodes.every((node) => node.status === 'done')) break
    for (const node of nodes) {
      const ready = node.status === 'pending' && node.deps.every((dep) => graph.nodes[dep]?.status === 'done')
      if (ready && !running.has(node.id))
        running.set(
          node.id,
          runNode(node).finally(() => running.delete(node.id))
        )
    }
    if (running.size === 0) throw new Error(`no node of graph ${id} can start: a dependency is missing`)
    // Wait for any node to finish, then look again (a finished node may free others).
    await Promise.race(running.values())
    await state.patch([{ op: 'replace', path: '/progress', value: progressOf((await state.get()) as Graph) }])
    await task('running', progressOf((await state.get()) as Graph), 'Running the graph')
  }
  await state.patch([
    { op: 'replace', path: '/status', value: 'done' },
    { op: 'replace', path: '/progress', value: 100 }
  ])
  await task('succeeded', 100, `Done: ${goal}`)
}

/** The share of nodes done, in percent. */
function progressOf(graph: Graph | undefined): number {
  if (graph === undefined || graph.order.length === 0) return 0
  const done = graph.order.filter((nodeId) => graph.nodes[nodeId]?.status === 'done').length
  return Math.round((done / graph.order.length) * 100)
}
