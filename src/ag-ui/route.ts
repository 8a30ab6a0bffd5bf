import { randomUUID } from 'node:crypto'
import type { Static } from '@sinclair/typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { FST_REALTIME_INVALID_OPTION } from '../errors.js'
import { detach } from '../server/hooks.js'
import { StateField } from '../server/state.js'
import type { AguiCore } from './core.js'
import { aguiEvents, RunAgentInput } from './events.js'
import { reattach } from './reattach.js'
import { aguiLogRoom, aguiRoom } from './rooms.js'
import { AguiRun, answerOf } from './run.js'
import { type SseOptions, SseWriter } from './sse.js'
import { Waiters } from './waiters.js'

/** The handler of an AG-UI route: what it returns is RUN_FINISHED's `result`. */
export type AguiHandler = (input: Static<typeof RunAgentInput>, run: AguiRun, signal: AbortSignal) => unknown

export interface AguiRouteOptions {
  /** Milliseconds over which a text message's appends are coalesced into one delta. Default 30. */
  window?: number
  /** Milliseconds between heartbeat comments on an idle event stream. Default 15 000. */
  heartbeat?: number
  /** The `retry:` hint of the event stream, in ms. Default 1 000. */
  retry?: number
}

/** `app.realtime.agui`. */
export interface AguiApi {
  /**
   * Registers an AG-UI endpoint: `POST url` runs `handler` for a `RunAgentInput` and answers with its events as
   * `text/event-stream` (RUN_STARTED, what the handler emits, RUN_FINISHED or RUN_ERROR), each with an `id:`.
   * `GET url?threadId=…&runId=…` with `Last-Event-ID` re-attaches to a running or finished run. Viewers follow the
   * thread in the room `agui:<threadId>`. Needs the `aguiEvents` preset in the `events` option.
   */
  route(url: string, handler: AguiHandler, options?: AguiRouteOptions): void
}

const ReattachQuery = {
  type: 'object',
  required: ['threadId', 'runId'],
  properties: { threadId: { type: 'string', minLength: 1 }, runId: { type: 'string', minLength: 1 } }
} as const

function whole(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 2 ** 31 - 1) {
    throw new FST_REALTIME_INVALID_OPTION(`agui.route option "${name}" must be a whole number of ms from ${min} (got ${String(value)})`)
  }
  return value
}

function refuse(reply: FastifyReply, statusCode: number, code: string, message: string): FastifyReply {
  return reply.code(statusCode).send({ statusCode, code, message })
}

export function createAgui(fastify: FastifyInstance, core: AguiCore): AguiApi {
  const waiters = new Waiters()
  /** Runs of this instance, by log room. */
  const active = new Map<string, AguiRun>()
  const writers = new Set<SseWriter>()
  // Open event streams would keep the server from closing: they end first (a client re-attaches elsewhere).
  fastify.addHook('preClose', async () => {
    for (const writer of writers) writer.end()
    waiters.close()
  })
  const open = (reply: FastifyReply, sse: SseOptions): SseWriter => {
    reply.hijack()
    const writer = new SseWriter(reply.raw, sse)
    writers.add(writer)
    reply.raw.on('close', () => writers.delete(writer))
    return writer
  }

  function rooms(threadId: string, runId: string, reply: FastifyReply): { room: string; log: string } | undefined {
    const room = aguiRoom(threadId)
    const log = aguiLogRoom(threadId, runId)
    if (core.validRoom(room) && core.validRoom(log)) return { room, log }
    refuse(reply, 400, 'invalid_room', 'threadId and runId must make valid room names (letters, digits and : _ - . @ /)')
    return undefined
  }

  /** Answers the interrupts a run's input resumes; false (and a reply sent) when one was answered before or is unknown. */
  async function resume(input: Static<typeof RunAgentInput>, room: string, reply: FastifyReply): Promise<boolean> {
    for (const entry of input.resume ?? []) {
      const question = (await core.adapter.stateRead(room))[StateField.key(entry.interruptId)]
      const result =
        question === undefined
          ? 'unknown'
          : await core.settle(room, question, { status: 'answered', data: answerOf(entry), by: `run ${input.runId}` })
      if (result === 'settled') {
        refuse(reply, 409, 'already_answered', `interrupt "${entry.interruptId}" was already answered`)
        return false
      }
      if (result === 'unknown') {
        refuse(reply, 404, 'unknown_interrupt', `no interrupt "${entry.interruptId}" in thread "${input.threadId}"`)
        return false
      }
    }
    return true
  }

  async function execute(run: AguiRun, input: Static<typeof RunAgentInput>, handler: AguiHandler, request: FastifyRequest): Promise<void> {
    const { threadId, runId } = input
    await run.send('RUN_STARTED', { threadId, runId, input })
    try {
      const result = await core.run({ room: run.room, runId }, (signal) => {
        // A cancel ends the run at once; a handler that goes on finds its later events refused.
        signal.addEventListener('abort', () => {
          const told = run.end('RUN_ERROR', { code: 'cancelled', message: 'the run was cancelled' })
          detach(request.log, 'agui cancelled run could not be told', { threadId, runId }, told)
        })
        return handler(input, run, signal)
      })
      await run.end('RUN_FINISHED', result === undefined ? { threadId, runId } : { threadId, runId, result })
    } catch (err) {
      // A handler that fails once its run was cancelled only met the cancel.
      if (run.finished) return
      request.log.error({ err, threadId, runId }, 'agui run failed')
      await run.end('RUN_ERROR', { code: 'internal', message: 'internal error' })
    }
  }

  return {
    route(url, handler, options = {}) {
      if (typeof url !== 'string' || !url.startsWith('/'))
        throw new FST_REALTIME_INVALID_OPTION('agui.route(url): url must be a path starting with "/"')
      if (typeof handler !== 'function') throw new FST_REALTIME_INVALID_OPTION('agui.route(url, handler): handler must be a function')
      const missing = Object.keys(aguiEvents).find((type) => !core.hasEvent(type))
      if (missing !== undefined) {
        throw new FST_REALTIME_INVALID_OPTION(
          `agui.route needs the AG-UI events in the "events" option (spread aguiEvents; ${missing} is missing)`
        )
      }
      const window = whole('window', options.window, 30, 0)
      const sse = { heartbeat: whole('heartbeat', options.heartbeat, 15_000, 1), retry: whole('retry', options.retry, 1_000, 0) }

      fastify.post(url, { schema: { body: RunAgentInput } }, async (request, reply) => {
        const input = request.body as Static<typeof RunAgentInput>
        const names = rooms(input.threadId, input.runId, reply)
        if (names === undefined) return reply
        const { room, log } = names
        const exists = (): FastifyReply =>
          refuse(reply, 409, 'run_exists', `run "${input.runId}" of thread "${input.threadId}" exists; re-attach with GET`)
        // Claimed before the first await, so two requests for one run on this instance cannot both start it.
        if (active.has(log)) return exists()
        const run = new AguiRun(core, input.threadId, input.runId, room, log, window, () => waiters.wake(log))
        active.set(log, run)
        let writer: SseWriter | undefined
        try {
          // Then in the adapter, atomically, so two instances cannot both start it either; the history catches a run
          // whose claim expired (it lasts the log room's ttl) but whose events are still kept.
          const policy = core.policyOf(log)
          const claim = randomUUID()
          if ((await core.adapter.stateClaim(log, StateField.runClaim, claim, policy.ttl)) !== claim) return exists()
          if ((await core.adapter.history(log, {}, policy)).position.seq > 0) return exists()
          if (!(await resume(input, room, reply))) return reply
          const stream = open(reply, sse)
          writer = stream
          run.sink((id, json, terminal) => {
            stream.event(id, json)
            if (terminal) stream.end()
          })
          await execute(run, input, handler, request)
          return reply
        } finally {
          active.delete(log)
          writer?.end()
        }
      })

      fastify.get(url, { schema: { querystring: ReattachQuery } }, async (request, reply) => {
        const { threadId, runId } = request.query as { threadId: string; runId: string }
        const names = rooms(threadId, runId, reply)
        if (names === undefined) return reply
        return reattach(core, waiters, names.log, request, reply, () => open(reply, sse))
      })
    }
  }
}
