// Runs the example as a newcomer would: starts the server, then the watch command it prints.
import { type ChildProcess, spawn } from 'node:child_process'
import t from 'tap'

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

t.test('the example server prints a token and a watch command; the command streams a run to its result', async (t) => {
  const server = run(['examples/agent-stream/server.ts'], { PORT: '0', HOST: '127.0.0.1' })
  const serverOut = collect(server)
  const serverExit = exited(server)
  t.teardown(() => {
    if (server.exitCode === null) server.kill('SIGKILL')
  })
  const deadline = Date.now() + 30_000
  let command: string | undefined
  while (command === undefined && Date.now() < deadline) {
    command = /npx tsx (examples\/agent-stream\/watch\.ts .+)$/m.exec(serverOut.out())?.[1]
    if (command === undefined) await new Promise((r) => setTimeout(r, 100))
  }
  t.ok(command, 'the server printed a ready-made watch command')
  t.match(serverOut.out(), /Token for user "demo"/)

  const watch = run((command as string).split(' '))
  const watchOut = collect(watch)
  const code = await exited(watch)
  t.equal(code, 0, 'the watcher exits 0 after the result')
  const lines = watchOut.out()
  for (const step of ['ready', 'task_update', 'agent:thought', 'agent:tool_call', 'node_status', 'hitl_request', 'agent:result']) {
    t.match(lines, step, `it showed ${step}`)
  }
  t.notMatch(lines, /"type":"error"/)

  server.kill('SIGTERM')
  t.equal(await serverExit, 0, 'the server shuts down cleanly on SIGTERM')
  t.match(serverOut.out(), /realtime connection closed/)
})
