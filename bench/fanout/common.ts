// What the orchestrator, the contender servers and the load process share: the room, the secret, the event and
// its envelope, a clock that all processes read alike, and a small request/response layer over the IPC channel.
import type { ChildProcess } from 'node:child_process'

export const ROOM = 'workflow:bench'
export const SECRET = 'fanout-benchmark-secret-of-enough-length'
export const EVENT_TYPE = 'agent:tool_call'
export const PATH = '/ws'
/** Set to `off` in the fastify-realtime server's environment by `--realtime-coalesce off`: it registers with `coalesce: false`. */
export const COALESCE_ENV = 'FANOUT_REALTIME_COALESCE'

/**
 * Microseconds on the monotonic clock. `process.hrtime` reads CLOCK_MONOTONIC, which is one clock for every process
 * of the machine, so a time taken in the server can be compared with one taken in the load process.
 */
export function nowUs(): number {
  const [s, ns] = process.hrtime()
  return s * 1e6 + Math.floor(ns / 1e3)
}

export interface ToolCall {
  runId: string
  callId: string
  tool: string
  status: 'running'
  args: { query: string; sources: string[]; sentAt: number }
  durationMs: number
}

/** The `data` of the n-th event: about 200 bytes of JSON, stamped with the time the server emits it. */
export function toolCall(n: number): ToolCall {
  return {
    runId: 'run-4f9c2a7e',
    callId: `call-${n}`,
    tool: 'web_search',
    status: 'running',
    args: { query: 'latest fastify websocket fan-out figures', sources: ['docs', 'issues', 'blog'], sentAt: nowUs() },
    durationMs: 182.4
  }
}

/** The envelope every contender sends, in the field order fastify-realtime writes: type, room, seq, data, ts. */
export function envelope(seq: number, data: ToolCall): { type: string; room: string; seq: number; data: ToolCall; ts: string } {
  return { type: EVENT_TYPE, room: ROOM, seq, data, ts: new Date().toISOString() }
}

// IPC: the parent sends { id, cmd, ...args }; the child answers { id, result } or { id, error }.

export interface Request {
  id: number
  cmd: string
  [arg: string]: unknown
}

type Reply = { id: number; result?: unknown; error?: string }

/** Answers the parent's requests with `handlers[cmd](request)`; `exit` ends the process without an answer. */
export function serveRequests(handlers: Record<string, (req: Request) => unknown>): void {
  process.on('message', (req: Request) => {
    // A --cpu-prof profile is written on the way out.
    if (req.cmd === 'exit') process.exit(0)
    const handler = handlers[req.cmd]
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown command "${req.cmd}"`)
        return handler(req)
      })
      .then(
        (result) => process.send?.({ id: req.id, result } satisfies Reply),
        (err: unknown) =>
          process.send?.({ id: req.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies Reply)
      )
  })
}

/** The parent's side: `call(cmd, args)` resolves with the child's result, rejects on its error, its exit or a timeout. */
export function requester(child: ChildProcess, name: string) {
  let next = 0
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>()
  child.on('message', (msg: Reply) => {
    const w = waiting.get(msg.id)
    if (w === undefined) return
    waiting.delete(msg.id)
    clearTimeout(w.timer)
    if (msg.error !== undefined) w.reject(new Error(`${name}: ${msg.error}`))
    else w.resolve(msg.result)
  })
  child.on('exit', (code, signal) => {
    for (const w of waiting.values()) {
      clearTimeout(w.timer)
      w.reject(new Error(`${name} exited (${signal ?? code}) before answering`))
    }
    waiting.clear()
  })
  return function call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 120_000): Promise<T> {
    const id = ++next
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.delete(id)
        reject(new Error(`${name}: "${cmd}" got no answer within ${timeoutMs} ms`))
      }, timeoutMs)
      waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer })
      child.send({ id, cmd, ...args })
    })
  }
}
