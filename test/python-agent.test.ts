// A real Python 3 process (standard library only) drives the server API: examples/python-agent/agent.py.
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import t from 'tap'
import type { ClientEvent } from '../src/client/index.js'
import type { AgentEvents } from '../src/index.js'
import { pythonUnavailable } from './helpers/child.js'
import { sdk, until } from './helpers/client.js'
import { buildApp, sign } from './helpers/index.js'

const KEY = 'python-agent-key-0123456789'
const ROOM = 'workflow:py'
const skip = pythonUnavailable(t)

t.test('a Python agent publishes, streams, asks and learns of a cancel; every SDK client receives all in order', { skip }, async (t) => {
  const app = await buildApp(t, { authorize: () => true, serverApi: { keys: [KEY] } })
  const address = app.server.address() as { port: number }
  const viewers = [0, 1].map((i) => {
    const client = sdk(t, app, { token: sign(`viewer${i}`) })
    const events: ClientEvent<AgentEvents>[] = []
    client.subscribe(ROOM, (event) => events.push(event))
    return { client, events }
  })
  await until(() => viewers.every((v) => v.client.state === 'open'))
  const [first] = viewers as [(typeof viewers)[0]]
  // The first viewer answers the question and cancels the run once the agent says it works until cancelled.
  first.client.onQuestions((open) => {
    for (const q of open) void first.client.reply(q.id, { optionId: 'yes' })
  })
  first.client.on('agent:thought', (event) => {
    if (event.data.content === 'working until cancelled') void first.client.cancel(ROOM, 'run-1')
  })

  const agent = spawn('python3', ['examples/python-agent/agent.py'], {
    env: { ...process.env, REALTIME_API: `http://127.0.0.1:${address.port}/ws/api`, REALTIME_KEY: KEY, ROOM },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => agent.kill('SIGKILL'))
  let stderr = ''
  agent.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const steps: Array<Record<string, unknown>> = []
  for await (const line of createInterface({ input: agent.stdout })) steps.push(JSON.parse(line))
  const code = await new Promise((resolve) => (agent.exitCode !== null ? resolve(agent.exitCode) : agent.once('exit', resolve)))
  t.equal(code, 0, `the agent exits cleanly ${stderr}`)
  t.match(steps, [
    { step: 'published', events: 1000, seq: 1000 },
    { step: 'streamed', tokens: 2000, seq: 1001 },
    { step: 'answered', status: 'answered', answer: { optionId: 'yes' } },
    { step: 'cancelled', reason: /cancelled by user viewer0/ }
  ])

  const answer = Array.from({ length: 2000 }, (_, i) => `tok${i} `).join('')
  for (const [i, { events }] of viewers.entries()) {
    await until(
      () => events.some((e) => (e.data as { content?: string }).content === 'working until cancelled'),
      10_000,
      `viewer ${i} saw the last event`
    )
    const thoughts = events.filter((e) => e.type === 'agent:thought' && !(e as { partial?: boolean }).partial)
    const steps = thoughts.slice(0, 1000).map((e) => (e.type === 'agent:thought' ? e.data.step : -1))
    t.same(
      steps,
      Array.from({ length: 1000 }, (_, n) => n),
      `viewer ${i} got the 1,000 events in order`
    )
    t.same(
      thoughts.map((e) => e.seq),
      [...Array.from({ length: 1001 }, (_, n) => n + 1), 1004],
      `viewer ${i}: seqs in order, without gaps (1002 is the question, 1003 its resolution)`
    )
    t.equal((thoughts[1000]?.data as { content?: string } | undefined)?.content, answer, `viewer ${i} got the whole streamed answer`)
    const partials = events.filter((e) => (e as { partial?: boolean }).partial).map((e) => (e.data as { content: string }).content)
    t.ok(partials.length > 1 && partials.length < 2000, `viewer ${i} saw the answer grow in ${partials.length} coalesced steps`)
    t.ok(
      partials.every((p, n) => answer.startsWith(p) && (n === 0 || p.length >= (partials[n - 1] as string).length)),
      'each step extends the last'
    )
    t.ok(
      events.some((e) => e.type === 'hitl_request'),
      `viewer ${i} was asked`
    )
  }
})
