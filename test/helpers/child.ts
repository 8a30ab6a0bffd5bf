import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import { sign, TestClient } from './index.js'

interface Test {
  teardown(fn: () => unknown): void
}

/** A server in its own process (a file of test/fixtures/), with the log lines it printed. */
export interface ChildServer {
  readonly port: number
  readonly child: ChildProcess
  /** Every JSON log line so far. */
  readonly logs: Record<string, any>[]
  /** Whether the process is still running. */
  alive(): boolean
  /** Resolves with the first log line that matches, waiting for it (a log line and a frame race each other). */
  log(match: (record: Record<string, any>) => boolean, ms?: number): Promise<Record<string, any>>
  /** Resolves with the exit code once the process has ended. */
  readonly exited: Promise<number | null>
  connect(sub: string, token?: string): Promise<TestClient>
  get(path: string): Promise<any>
  post(path: string, body: unknown): Promise<Response>
}

/**
 * Starts `test/fixtures/<file>` with `args`, with the test runner's loaders (TypeScript, coverage) but not its
 * `--unhandled-rejections` flag, so it runs with Node's default handling: a rejection that escapes ends it with code
 * 1. Outside the runner, tsx loads it. It is stopped with SIGTERM, on which a fixture exits cleanly.
 */
export async function startChild(t: Test, file: string, args: string[] = []): Promise<ChildServer> {
  const path = fileURLToPath(new URL(`../fixtures/${file}`, import.meta.url))
  const loaders = process.execArgv.filter((arg) => !arg.startsWith('--unhandled-rejections'))
  const flags = loaders.some((arg) => arg.includes('typescript')) ? loaders : ['--import', 'tsx']
  const child = spawn(process.execPath, [...flags, path, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      await exited
    }
  })
  const logs: Record<string, any>[] = []
  const logWaiters = new Set<() => void>()
  let port: number | undefined
  let rest = ''
  const listening = new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the server exited with ${code} before listening`)))
    child.stdout?.on('data', (chunk: Buffer) => {
      rest += chunk.toString()
      const lines = rest.split('\n')
      rest = lines.pop() as string
      for (const line of lines) {
        if (line.trim() === '') continue
        const record = JSON.parse(line) as Record<string, any>
        if (port === undefined && typeof record.port === 'number' && record.level === undefined) {
          port = record.port as number
          resolve(port)
        } else logs.push(record)
      }
      for (const wake of logWaiters) wake()
    })
  })
  const at = await listening
  return {
    port: at,
    child,
    logs,
    exited,
    alive: () => child.exitCode === null && child.signalCode === null,
    async log(match, ms = 3000) {
      const deadline = Date.now() + ms
      for (;;) {
        const found = logs.find(match)
        if (found !== undefined) return found
        const left = deadline - Date.now()
        if (left <= 0) throw new Error('timed out waiting for a log line')
        await new Promise<void>((resolve) => {
          const wake = (): void => {
            logWaiters.delete(wake)
            clearTimeout(timer)
            resolve()
          }
          const timer = setTimeout(wake, left)
          logWaiters.add(wake)
        })
      }
    },
    async connect(sub, token = sign(sub)) {
      const ws = new WebSocket(`ws://127.0.0.1:${at}/ws`, { headers: { authorization: `Bearer ${token}` } })
      const client = new TestClient(ws)
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve())
        ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
        ws.once('error', reject)
      })
      client.ready = await client.next('ready')
      t.teardown(() => ws.terminate())
      return client
    },
    async get(p) {
      return (await fetch(`http://127.0.0.1:${at}${p}`)).json()
    },
    post(p, body) {
      return fetch(`http://127.0.0.1:${at}${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body)
      })
    }
  }
}

/**
 * Why tests that run a real python3 cannot run here, or false. With REALTIME_REQUIRE_PYTHON=1 (set by .ci/run) a
 * missing python3 fails the file instead of skipping it.
 */
export function pythonUnavailable(t: { fail(message: string): void }): string | false {
  if (spawnSync('python3', ['--version'], { stdio: 'ignore' }).status === 0) return false
  const reason = 'no python3 (Debian package python3): the Python example tests are skipped'
  if (process.env.REALTIME_REQUIRE_PYTHON === '1') t.fail(`REALTIME_REQUIRE_PYTHON=1 but ${reason}`)
  return reason
}
