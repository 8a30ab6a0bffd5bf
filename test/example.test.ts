// Runs the example as a newcomer would: starts the server, then the watch command it prints.
import { type ChildProcess, spawn } from 'node:child_process'
import t, { type Test } from 'tap'
import { requireRedis, startRedis } from './helpers/redis.js'

function run(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
}

function collect(child: ChildProcess): { out: () => string } {
  let out = ''
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  child.stderr?.on('data', (c: Buffer) => {
    out += c.toString()
  })
  return { out: () => out }
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)))
}

/** Starts `examples/agent-stream/server.ts` on a free port; resolves with the watch command it prints (args only). */
async function startServer(t: Test, env: Record<string, string> = {}) {
  const server = run(['examples/agent-stream/server.ts'], { PORT: '0', HOST: '127.0.0.1', ...env })
  const out = collect(server)
  const exit = exited(server)
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGKILL')
  })
  const deadline = Date.now() + 30_000
  let command: string | undefined
  while (command === undefined && Date.now() < deadline && server.exitCode === null) {
    command = /npx tsx (examples\/agent-stream\/watch\.ts .+)$/m.exec(out.out())?.[1]
    if (command === undefined) await new Promise((r) => setTimeout(r, 100))
  }
  t.ok(command, 'the server printed a ready-made watch command')
  const args = (command ?? '').split(' ')
  const url = args[args.indexOf('--url') + 1] as string
  return { server, out, exit, args, url }
}

t.test('the example server prints a token and a watch command; the command streams a run to its result', async (t) => {
  const { server, out: serverOut, exit: serverExit, args: command } = await startServer(t)
  t.match(serverOut.out(), /Token for user "demo"/)
  t.match(serverOut.out(), /Adapter: +in memory/)

  const watch = run(command)
  const watchOut = collect(watch)
  const code = await exited(watch)
  t.equal(code, 0, 'the watcher exits 0 after the result')
  const lines = watchOut.out()
  for (const step of ['RUN_STARTED', 'STATE_SNAPSHOT', 'STEP_STARTED', 'TEXT_MESSAGE_START', 'TOOL_CALL_ARGS', 'STATE_DELTA']) {
    t.match(lines, new RegExp(`^ *#\\d+ +${step} `, 'm'), `it showed ${step}`)
  }
  t.match(lines, /#\d+ +TEXT_MESSAGE_CONTENT +Reading the prompt: "What changed in Fastify 5\?"/, 'a thought, its text whole')
  t.match(lines, /#\d+ +TOOL_CALL_RESULT +→ \{"results":\[\{"title":"Fastify v5 release notes"/, 'the web search and its result')
  t.match(lines, /\? +interrupt +Publish the summary\? \[approve\|reject\] → approve/, 'the interrupt, approved')
  t.match(lines, /#\d+ +RUN_FINISHED +Found 3 sources/, 'the run finished with its result')
  t.notMatch(lines, /"type":"error"/)
  const metrics = await (await fetch(new URL('/metrics', (command[command.indexOf('--url') + 1] as string).replace('ws:', 'http:')))).text()
  t.match(metrics, /^realtime_messages_sent_total\{type="RUN_FINISHED"\} 1$/m, 'the run shows in /metrics')

  server.kill('SIGTERM')
  t.equal(await serverExit, 0, 'the server shuts down cleanly on SIGTERM')
  t.match(serverOut.out(), /realtime connection closed/)
})

t.test('two example servers on one Redis: a run started through one streams through the other', { skip: requireRedis(t) }, async (t) => {
  const redis = await startRedis(t)
  // What the README tells users: the same REDIS_URL and JWT_SECRET for every instance.
  const env = { REDIS_URL: redis.url, JWT_SECRET: 'two-instances-share-this-secret' }
  const [one, two] = await Promise.all([startServer(t, env), startServer(t, env)])
  for (const { out } of [one, two]) t.match(out.out(), /Adapter: +Redis at redis:\/\/127\.0\.0\.1:\d+/)
  t.not(one.url, two.url, 'two servers on two ports')

  // The command printed by the second server, told to start the run through the first.
  const watch = run([...two.args, '--start-url', one.url])
  const watchOut = collect(watch)
  t.equal(await exited(watch), 0, 'the watcher exits 0 after the result')
  const lines = watchOut.out()
  t.match(lines, `run-`, 'a run was started')
  t.match(lines, `started on ${one.url}`, 'through the first server')
  t.match(lines, `on ${two.url}`, 'and watched through the second')
  // Every event of the run arrived through the second server, numbered 1, 2, 3, … without a gap.
  const seqs = [...lines.matchAll(/^ *#(\d+) +(\S+)/gm)].map((m) => Number(m[1]))
  t.ok(seqs.length >= 10, `${seqs.length} events arrived`)
  t.same(
    seqs,
    seqs.map((_, i) => i + 1),
    'seq 1, 2, 3, … with no gap'
  )
  t.match(lines, /#\d+ +RUN_FINISHED/, 'including the result')
  t.match(lines, /\? +interrupt/, 'the approval interrupt was asked and answered')
  t.match(lines, /#\d+ +hitl_resolved +answered by demo/, 'through the second server, for a run on the first')

  for (const { server, exit } of [one, two]) {
    server.kill('SIGTERM')
    t.equal(await exit, 0, 'each server shuts down cleanly on SIGTERM')
  }
})
