// The Python executor example as a user runs it: `npm run example:python`, then real SDK clients. A real python3
// process per execution publishes through the server API; one client watches every execution of the graph, another
// starts executions, answers the question in its own room and gets the notifications.
import { type ChildProcess, spawn } from 'node:child_process'
import t, { type Test } from 'tap'
import type { ClientEvent } from '../src/client/index.js'
import type { AgentEvents } from '../src/index.js'
import { pythonUnavailable } from './helpers/child.js'
import { sdk, until } from './helpers/client.js'

const skip = pythonUnavailable(t)

/** Starts the example through its npm script, in a process group of its own (npm starts tsx, which starts node). */
async function start(t: Test): Promise<{ base: string; out: () => string; server: ChildProcess; exited: () => boolean }> {
  const server = spawn('npm', ['run', '--silent', 'example:python'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true
  })
  let out = ''
  server.stdout?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  server.stderr?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  let exited = false
  server.once('exit', () => {
    exited = true
  })
  t.teardown(() => {
    // The whole group: npm, tsx and the server it runs.
    if (!exited) process.kill(-(server.pid as number), 'SIGKILL')
  })
  await until(() => /listening on (http:\/\/\S+)/.test(out) || server.exitCode !== null, 30_000, 'the example to listen')
  const base = /listening on (http:\/\/\S+)/.exec(out)?.[1] as string
  return { base, out: () => out, server, exited: () => exited }
}

t.test('executions in Python reach the graph, the execution and the user; one answered, one cancelled', { skip }, async (t) => {
  const { base, out, server, exited } = await start(t)
  const token = async (user: string) => ((await (await fetch(`${base}/dev/token?user=${user}`)).json()) as { token: string }).token
  const url = `${base.replace('http', 'ws')}/ws`
  const ada = sdk(t, url, { token: await token('ada') })
  const bob = sdk(t, url, { token: await token('bob') })

  // Bob watches every execution of graph g1; Ada her own room (questions, notifications).
  const graph: Array<ClientEvent<AgentEvents>> = []
  bob.subscribe('graph:g1', (e) => graph.push(e))
  const mine: Array<ClientEvent<AgentEvents>> = []
  ada.subscribe('user:ada', (e) => mine.push(e))
  ada.onQuestions((open) => {
    for (const q of open) ada.reply(q.id, { optionId: 'yes' }).catch(() => {})
  })
  await until(() => ada.state === 'open' && bob.state === 'open', 5000, 'both connected')

  // The first execution runs to its end; Ada follows it in its own room too.
  const first = (await ada.send('graph:run' as never, { graphId: 'g1' } as never)) as { executionId: string; room: string }
  t.match(first, { executionId: /^exec-[0-9a-f]{8}$/, room: `execution:${first.executionId}` })
  const execution: Array<ClientEvent<AgentEvents>> = []
  ada.subscribe(first.room, (e) => execution.push(e))
  const finished = (id: string, status: string) => () =>
    graph.some((e) => e.type === 'task_update' && e.data.taskId === id && e.data.status === status)
  await until(finished(first.executionId, 'succeeded'), 30_000, 'the first execution to succeed')

  const nodes = (id: string) =>
    graph
      .filter((e) => e.type === 'node_status' && e.data.runId === id)
      .map((e) => (e.type === 'node_status' ? `${e.data.nodeId} ${e.data.status}` : ''))
  t.same(
    nodes(first.executionId),
    ['fetch running', 'fetch completed', 'summarize running', 'summarize completed', 'review running', 'review completed'],
    'the graph watcher saw each node of the execution, in order'
  )
  t.same(
    graph.map((e) => e.seq),
    graph.map((_, i) => i + 1),
    'the graph room: every event, seq 1, 2, 3… without a gap'
  )
  await until(() => execution.some((e) => e.type === 'agent:result'), 10_000, 'the result in the execution room')
  const summary = execution.find((e) => e.type === 'agent:thought' && !(e as { partial?: boolean }).partial)
  t.equal(
    summary?.type === 'agent:thought' ? summary.data.content : undefined,
    Array.from({ length: 60 }, (_, i) => `word${i} `).join(''),
    'the streamed summary, whole'
  )
  t.ok(
    execution.some((e) => (e as { partial?: boolean }).partial),
    'seen growing'
  )
  t.match(
    execution.find((e) => e.type === 'agent:result'),
    { data: { output: { published: true } } },
    'published, as Ada answered'
  )
  await until(() => mine.some((e) => e.type === 'error_notification'), 10_000, 'the notification')
  t.match(
    mine.find((e) => e.type === 'error_notification'),
    { data: { severity: 'info', message: `Execution ${first.executionId} succeeded` } }
  )

  // The second one is cancelled by Bob, who only watches the graph, while it streams its summary.
  const second = (await ada.send('graph:run' as never, { graphId: 'g1' } as never)) as { executionId: string; room: string }
  await until(() => nodes(second.executionId).includes('summarize running'), 30_000, 'the second execution to summarize')
  await bob.cancel(second.room, second.executionId)
  await until(finished(second.executionId, 'cancelled'), 30_000, 'the second execution to stop')
  t.notOk(nodes(second.executionId).includes('review running'), 'it stopped before its next node')
  await until(() => mine.filter((e) => e.type === 'error_notification').length === 2, 10_000, 'the second notification')
  t.match(mine.filter((e) => e.type === 'error_notification')[1], { data: { message: `Execution ${second.executionId} cancelled` } })
  await until(() => (out().match(/"executor exited"/g) ?? []).length === 2, 10_000, 'both executors to exit')
  t.equal((out().match(/"code":0/g) ?? []).length, 2, 'both executors exited with 0')
  t.notMatch(out(), /executor stderr/, 'nothing on their stderr')

  process.kill(-(server.pid as number), 'SIGTERM')
  await until(exited, 10_000, 'the server to stop')
  t.match(out(), /"executor exited"/)
})
