// What the processes of the cluster benchmark share: the contenders, the event, the clock and a tiny RPC over the
// IPC channel of `child_process.fork`.
import type { ChildProcess } from 'node:child_process'

export const CONTENDERS = ['fastify-realtime', 'socket.io'] as const
export type Contender = (typeof CONTENDERS)[number]

/** The one room every client of a run is in. */
export const ROOM = 'bench:fanout'

/**
 * Microseconds on the system-wide monotonic clock. Unlike `performance.now()` (relative to each process's start) it
 * is the same clock in every process of the machine, so an emit time stamped by a server can be compared with the
 * receive time of the load process.
 */
export function micros(): number {
  const [s, ns] = process.hrtime()
  return s * 1e6 + ns / 1e3
}

/** A stretch of events one instance emits: `window` keeps at most that many not yet delivered; `rate` paces per second. */
export interface Phase {
  /** Marks the phase's events (their `runId`), so nothing of an earlier phase is counted. */
  readonly tag: string
  readonly count: number
  readonly window?: number
  readonly rate?: number
}

const TEXT = 'Comparing the three search results: the migration guide lists the breaking changes, so I will summarize it first.'

/** The data of an `agent:thought`, about 200 bytes of JSON; `sentAt` (µs, `micros()`) is taken just before the emit. */
export function thought(tag: string, step: number): { runId: string; step: number; content: string; sentAt: number } {
  return { runId: tag, step, content: TEXT, sentAt: micros() }
}

// RPC: a call carries an `id` and gets one reply with it; a message without `id` is a notification.

interface Message {
  readonly op: string
  readonly id?: number
  readonly args?: unknown
  readonly result?: unknown
  readonly error?: string
}

type Handlers = Record<string, (args: any) => unknown>

/** In a child: answers the parent's calls with `handlers` (notifications get no answer). */
export function serve(handlers: Handlers): void {
  process.on('message', (message: Message) => {
    const handler = handlers[message.op]
    const reply = (body: Partial<Message>) => message.id !== undefined && process.send?.({ op: 'reply', id: message.id, ...body })
    if (handler === undefined) {
      reply({ error: `unknown op ${message.op}` })
      return
    }
    Promise.resolve()
      .then(() => handler(message.args))
      .then(
        (result) => reply({ result }),
        (err: unknown) => reply({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
      )
  })
}

/** Sends a notification to the parent. */
export function notifyParent(op: string, args?: unknown): void {
  process.send?.({ op, args })
}

/** The parent's side of one child. */
export class Peer {
  private next = 0
  private readonly pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>()
  private readonly listeners = new Map<string, (args: any) => void>()

  constructor(
    readonly name: string,
    readonly child: ChildProcess
  ) {
    child.on('message', (message: Message) => {
      if (message.op !== 'reply') {
        this.listeners.get(message.op)?.(message.args)
        return
      }
      const waiting = this.pending.get(message.id as number)
      this.pending.delete(message.id as number)
      if (message.error !== undefined) waiting?.reject(new Error(`${this.name}: ${message.error}`))
      else waiting?.resolve(message.result)
    })
    child.once('exit', (code, signal) => {
      for (const { reject } of this.pending.values()) reject(new Error(`${this.name} exited (${code ?? signal})`))
      this.pending.clear()
    })
  }

  call<T = unknown>(op: string, args?: unknown): Promise<T> {
    const id = ++this.next
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.child.send({ op, id, args })
    })
  }

  notify(op: string, args?: unknown): void {
    if (this.child.connected) this.child.send({ op, args })
  }

  on(op: string, listener: (args: any) => void): void {
    this.listeners.set(op, listener)
  }
}
