import { randomBytes, randomUUID } from 'node:crypto'
import type { Static } from '@sinclair/typebox'
import { FST_REALTIME_INVALID_EVENT } from '../errors.js'
import type { JsonPatchOperation } from '../protocol/messages.js'
import { type Checker, compile } from '../protocol/schemas.js'
import type { StreamHandle } from '../server/streams.js'
import type { StateChange, StateHandle } from '../types.js'
import type { AguiCore } from './core.js'
import { type AguiEvents, type AguiInterrupt, type AguiResumeEntry, aguiEvents } from './events.js'
import { aguiStateRoom } from './rooms.js'

/** Any AG-UI event: `{ type, ...fields }`. */
export type AguiEvent = {
  [K in keyof AguiEvents]: { type: K } & Static<AguiEvents[K]>
}[keyof AguiEvents]

/** The answer to an interrupt: AG-UI's resume entry without its `interruptId`. */
export type AguiAnswer = Pick<Static<typeof AguiResumeEntry>, 'status' | 'payload'>

export interface InterruptOptions extends Omit<Static<typeof AguiInterrupt>, 'id' | 'expiresAt'> {
  /** Milliseconds the interrupt may wait for an answer (then `interrupt()` rejects); sets `expiresAt`. Default: ever. */
  timeout?: number
}

/** A streamed text message: `append()` is coalesced, as `app.realtime.stream()` is. */
export interface AguiTextMessage {
  readonly messageId: string
  append(text: string): void
  /** Sends what is left and TEXT_MESSAGE_END. */
  end(): Promise<void>
}

/** A tool call: its arguments as deltas, then its result. */
export interface AguiToolCall {
  readonly toolCallId: string
  /** A fragment of the arguments' JSON; an object is sent whole, as JSON. */
  args(delta: string | object): Promise<void>
  /** TOOL_CALL_END: the arguments are complete. */
  end(): Promise<void>
  /** TOOL_CALL_RESULT (after TOOL_CALL_END, sent first if it was not): a string, or any JSON value as JSON. */
  result(content: unknown, options?: { messageId?: string }): Promise<void>
}

/**
 * The thread's state, shared by its runs and by every viewer: kept in the state room `agui-state:<threadId>`, so a
 * viewer who subscribes there gets the value whole, then each change as a JSON Patch.
 */
export interface AguiState {
  /** The value as the state room holds it; undefined before the first change. */
  get(): Promise<unknown>
  /**
   * Replaces the value. The run's first change sends STATE_SNAPSHOT (the whole value); each later one STATE_DELTA,
   * the JSON Patch from the value before, computed for you. A change that changes nothing sends nothing.
   */
  set(value: unknown): Promise<void>
  /** Applies RFC 6902 operations to the value (to `{}` before the first change), sent as STATE_DELTA, or STATE_SNAPSHOT first. */
  patch(ops: readonly JsonPatchOperation[]): Promise<void>
}

/** Where a run sends each event once it has its place: the `id:` of the event in the run's log, and its JSON. */
export type RunSink = (id: string, json: string, terminal: boolean) => void

const checks = new Map<string, Checker>(Object.entries(aguiEvents).map(([type, schema]) => [type, compile(schema)]))
const TERMINAL = new Set(['RUN_FINISHED', 'RUN_ERROR'])

/** The SSE id of a log entry: its seq, then its epoch (a new epoch means the log was lost). */
export const eventId = (seq: number, epoch: string): string => `${seq}:${epoch}`

/**
 * One AG-UI run. Every event goes, in order, to the run's log room (each delta a history event: what re-attach
 * replays, one by one) and to the thread's room for viewers, where a text message's content is a token stream (a
 * late joiner gets the text so far, then the deltas).
 */
export class AguiRun {
  private chain: Promise<unknown> = Promise.resolve()
  private readonly sinks = new Set<RunSink>()
  private ended = false

  constructor(
    private readonly core: AguiCore,
    readonly threadId: string,
    readonly runId: string,
    /** The thread's room, which viewers subscribe to: `agui:<threadId>`. */
    readonly room: string,
    /** The run's log room: `agui:<threadId>:<runId>`. */
    readonly log: string,
    private readonly window: number,
    private readonly logged: () => void
  ) {}

  /** True once RUN_FINISHED or RUN_ERROR is sent. */
  get finished(): boolean {
    return this.ended
  }

  sink(sink: RunSink): () => void {
    this.sinks.add(sink)
    return () => this.sinks.delete(sink)
  }

  /** Sends any AG-UI event, checked against the AG-UI schemas first: a wrong one throws and nothing is sent. */
  emit(event: AguiEvent): Promise<void> {
    const { type, data } = check(event)
    if (type === 'RUN_STARTED' || TERMINAL.has(type)) {
      throw new FST_REALTIME_INVALID_EVENT(`run.emit: ${type} is sent by the route, around the handler`)
    }
    return this.send(type, data)
  }

  /** Sends an event in order: to the log first (its seq is the event's id), then to the viewers unless `viewers` is false. */
  send(type: string, data: object, viewers = true): Promise<void> {
    if (this.ended) return Promise.reject(new FST_REALTIME_INVALID_EVENT(`run ${this.runId} has ended`))
    const terminal = TERMINAL.has(type)
    if (terminal) this.ended = true
    return this.enqueue(() => this.deliver(type, data, viewers, terminal))
  }

  /** Ends the run with RUN_FINISHED or RUN_ERROR, unless it has ended already: a cancel and the handler's end may both try. */
  end(type: 'RUN_FINISHED' | 'RUN_ERROR', data: object): Promise<void> {
    return this.ended ? Promise.resolve() : this.send(type, data)
  }

  /** One step of the chain: the event to the log, to the run's streams, then to the viewers. */
  private async deliver(type: string, data: object, viewers: boolean, terminal: boolean): Promise<void> {
    const { seq, epoch } = await this.core.emit(this.log, { type, data })
    const json = JSON.stringify({ type, ...data })
    for (const sink of this.sinks) sink(eventId(seq, epoch), json, terminal)
    this.logged()
    if (viewers) await this.core.emit(this.room, { type, data })
  }

  /** The thread's state (see `AguiState`); the state room is opened on first use, so a run without state needs none. */
  readonly state: AguiState = {
    get: () => this.stateRoom().get(),
    set: (value) => this.changeState((room) => room.set(value)),
    patch: (ops) => this.changeState((room) => room.patch(ops))
  }

  private stateHandle: StateHandle | undefined
  private snapshotSent = false

  private stateRoom(): StateHandle {
    this.stateHandle ??= this.core.state(aguiStateRoom(this.threadId))
    return this.stateHandle
  }

  /** Changes the state room and sends the change, in one step of the chain, so it keeps its place among the events. */
  private changeState(change: (room: StateHandle) => Promise<StateChange>): Promise<void> {
    if (this.ended) return Promise.reject(new FST_REALTIME_INVALID_EVENT(`run ${this.runId} has ended`))
    const room = this.stateRoom()
    return this.enqueue(async () => {
      const { ops } = await change(room)
      if (this.snapshotSent && ops.length === 0) return
      const event = this.snapshotSent
        ? check({ type: 'STATE_DELTA', delta: ops as JsonPatchOperation[] } as AguiEvent)
        : check({ type: 'STATE_SNAPSHOT', snapshot: await room.get() } as AguiEvent)
      this.snapshotSent = true
      await this.deliver(event.type, event.data, true, false)
    })
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    const next = this.chain.then(step)
    this.chain = next.catch(() => undefined)
    return next
  }

  text(options: { messageId?: string; role?: 'assistant' | 'developer' | 'system' | 'user' } = {}): AguiTextMessage {
    const messageId = options.messageId ?? randomUUID()
    let stream: StreamHandle | undefined
    let pending = ''
    let timer: NodeJS.Timeout | undefined
    let closed = false
    // What append() sets going has nobody to tell of a failure but end(): the first one is kept for it, so that a lost
    // delta ends the message with an error (and the run with RUN_ERROR) rather than with a gap.
    let failure: { readonly error: unknown } | undefined
    const remember = (error: unknown): void => {
      failure ??= { error }
    }
    this.send('TEXT_MESSAGE_START', { messageId, role: options.role ?? 'assistant' }).catch(remember)
    // Opened in the chain, after TEXT_MESSAGE_START reached the viewers. The viewers' stream sends each of our
    // coalesced deltas at once (window 0): one coalescing, one pace, for the log and the room alike.
    this.enqueue(async () => {
      stream = this.core.stream(this.room, { type: 'TEXT_MESSAGE_CONTENT', data: { messageId, delta: '' } }, { field: 'delta', window: 0 })
    }).catch(remember)
    const flush = (): Promise<void> => {
      timer = undefined
      const delta = pending
      pending = ''
      if (delta === '') return Promise.resolve()
      this.enqueue(async () => (stream as StreamHandle).append(delta)).catch(remember)
      return this.send('TEXT_MESSAGE_CONTENT', { messageId, delta }, false)
    }
    return {
      messageId,
      append: (text) => {
        if (typeof text !== 'string') throw new FST_REALTIME_INVALID_EVENT('text.append(text): text must be a string')
        if (closed || this.ended) throw new FST_REALTIME_INVALID_EVENT(`text message ${messageId} has ended`)
        pending += text
        timer ??= setTimeout(() => flush().catch(remember), this.window)
      },
      end: async () => {
        if (closed) throw new FST_REALTIME_INVALID_EVENT(`text message ${messageId} has ended`)
        closed = true
        clearTimeout(timer)
        await flush()
        await this.enqueue(async () => {
          // The chain is in order: every delta before this step has gone out, or failed and been remembered.
          if (failure !== undefined) throw failure.error
          await (stream as StreamHandle).end()
        })
        await this.send('TEXT_MESSAGE_END', { messageId })
      }
    }
  }

  toolCall(toolCallName: string, options: { toolCallId?: string; parentMessageId?: string } = {}): AguiToolCall {
    const toolCallId = options.toolCallId ?? randomUUID()
    const start: Record<string, string> = { toolCallId, toolCallName }
    if (options.parentMessageId !== undefined) start.parentMessageId = options.parentMessageId
    const started = this.emit({ type: 'TOOL_CALL_START', ...start } as AguiEvent)
    let ended: Promise<void> | undefined
    const end = (): Promise<void> => {
      ended ??= this.emit({ type: 'TOOL_CALL_END', toolCallId })
      return ended
    }
    return {
      toolCallId,
      args: async (delta) => {
        await started
        if (ended !== undefined) throw new FST_REALTIME_INVALID_EVENT(`tool call ${toolCallId} has ended`)
        await this.emit({ type: 'TOOL_CALL_ARGS', toolCallId, delta: typeof delta === 'string' ? delta : JSON.stringify(delta) })
      },
      end,
      result: async (content, opts = {}) => {
        await end()
        await this.emit({
          type: 'TOOL_CALL_RESULT',
          messageId: opts.messageId ?? randomUUID(),
          toolCallId,
          role: 'tool',
          content: typeof content === 'string' ? content : JSON.stringify(content)
        })
      }
    }
  }

  /**
   * Asks for something the run needs (an approval, a value) and waits for the answer: a `reply` of a WebSocket
   * client to the question (`app.realtime.ask()` in the thread's room), or a new run whose input carries
   * `resume: [{ interruptId, status, payload }]`. The first answer wins; the others are told `already_answered`. The
   * interrupt goes to the run's stream as `CUSTOM { name: 'interrupt', value: <Interrupt> }`.
   */
  async interrupt(options: InterruptOptions): Promise<AguiAnswer> {
    const { timeout, ...fields } = options
    const id = `int.${randomBytes(9).toString('base64url')}`
    const interrupt: Record<string, unknown> = { ...fields, id }
    if (timeout !== undefined && timeout !== Number.POSITIVE_INFINITY) interrupt.expiresAt = new Date(Date.now() + timeout).toISOString()
    const event = { type: 'CUSTOM', name: 'interrupt', value: interrupt } as AguiEvent
    const custom = check(event)
    check({ type: 'RUN_FINISHED', threadId: '', runId: '', outcome: { type: 'interrupt', interrupts: [interrupt] } } as AguiEvent)
    await this.send(custom.type, custom.data, false)
    const answer = await this.core.ask(this.room, custom, {
      idempotencyKey: id,
      timeout: timeout ?? Number.POSITIVE_INFINITY
    })
    return answerOf(answer)
  }
}

/** Checks an AG-UI event; returns it as a registry event `{ type, data }`. */
export function check(event: AguiEvent): { type: string; data: Record<string, unknown> } {
  if (typeof event !== 'object' || event === null) throw new FST_REALTIME_INVALID_EVENT('an AG-UI event must be an object { type, ... }')
  const { type, ...data } = event as { type: unknown }
  const checker = typeof type === 'string' ? checks.get(type) : undefined
  if (checker === undefined) throw new FST_REALTIME_INVALID_EVENT(`unknown AG-UI event type "${String(type)}"`)
  if (!checker.check(data)) throw new FST_REALTIME_INVALID_EVENT(`AG-UI event ${type as string} is invalid at ${checker.explain(data)}`)
  return { type: type as string, data }
}

/** A `reply` may be a resume entry's `{ status, payload }`, or just the payload (then it resolves the interrupt). */
export function answerOf(data: unknown): AguiAnswer {
  const { status, payload } = (data ?? {}) as { status?: unknown; payload?: unknown }
  if (status === 'resolved' || status === 'cancelled') return payload === undefined ? { status } : { status, payload }
  return { status: 'resolved', payload: data }
}
