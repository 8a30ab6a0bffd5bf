import type { FastifyInstance } from 'fastify'
import type { ServerApiSettings } from '../options.js'
import { detach } from '../server/hooks.js'
import type { StreamHandle } from '../server/streams.js'
import { ApiError, ApiErrorCode } from './errors.js'
import { checkKey } from './idempotency.js'
import * as S from './schemas.js'
import type { ServerApiContext } from './server-api.js'
import { checkEvent, checkRoom, viaAdapter } from './shared.js'

/** A run registered over HTTP: it lasts until ended, or `idleTimeout` without a request about it. */
interface Run {
  readonly room: string
  readonly runId: string
  /** The cancel's reason, once cancelled. */
  reason: string | undefined
  ended: boolean
  readonly finish: () => void
  readonly waiters: Set<() => void>
  idle: NodeJS.Timeout
}

interface Stream {
  readonly handle: StreamHandle
  readonly room: string
  readonly run: Run | undefined
  /** Whether the stream made its run: one registered before (`POST /runs`) outlives the stream, until its DELETE. */
  readonly ownsRun: boolean
  idle: NodeJS.Timeout
}

interface Question {
  state: S.QuestionState
  readonly waiters: Set<() => void>
}

/**
 * Token streams, questions and runs over HTTP, for agents in other processes and languages. Streams and runs are held
 * by the instance that opened them: their later requests must reach it (a sticky route, or one API instance). A
 * question's answer reaches that instance from any other.
 */
export function agentRoutes(app: FastifyInstance, ctx: ServerApiContext, base: string): void {
  const { hub, agent, api } = ctx
  const settings = ctx.opts.serverApi as ServerApiSettings
  let closing = false
  const runs = new Map<string, Run>()
  const streams = new Map<string, Stream>()
  const questions = new Map<string, Question>()
  const runKey = (room: string, runId: string): string => `${room}\n${runId}`
  const wake = (waiters: Set<() => void>): void => {
    for (const w of [...waiters]) w()
  }

  /**
   * Waits until `done()` holds or `seconds` pass (or the app closes). `waiters` are woken only when what they wait for
   * happened (a cancel, an end, an answer) or the app closes, so a wake ends the wait.
   */
  const longPoll = (waiters: Set<() => void>, seconds: number, done: () => boolean): Promise<void> =>
    new Promise((resolve) => {
      if (done() || seconds === 0 || closing) return resolve()
      const finish = (): void => {
        clearTimeout(timer)
        waiters.delete(finish)
        resolve()
      }
      const timer = setTimeout(finish, seconds * 1000)
      waiters.add(finish)
    })

  const waitOf = (query: unknown): number => {
    const raw = (query as { wait?: unknown }).wait
    if (raw === undefined) return 0
    const wait = Number(raw)
    if (!Number.isInteger(wait) || wait < 0 || wait > settings.maxWait) {
      throw new ApiError(400, ApiErrorCode.InvalidMessage, `?wait= must be a whole number of seconds from 0 to ${settings.maxWait}`)
    }
    return wait
  }

  const register = (room: string, runId: string): Run => {
    const key = runKey(room, runId)
    const held = runs.get(key)
    if (held !== undefined) return touch(held)
    let finish: () => void
    const ended = new Promise<void>((resolve) => {
      finish = resolve
    })
    const run: Run = {
      room,
      runId,
      reason: undefined,
      ended: false,
      finish: () => finish(),
      waiters: new Set(),
      idle: idleTimer(() => end(run))
    }
    runs.set(key, run)
    api
      .run({ room, runId }, (signal) => {
        signal.addEventListener('abort', () => {
          run.reason = (signal.reason as Error).message
          wake(run.waiters)
        })
        return ended
      })
      .finally(() => runs.delete(key))
      // A cancel is what the run's waiters are told (run.reason); the rejection itself has no one else to reach.
      .catch(() => undefined)
    return run
  }
  const end = (run: Run): void => {
    run.ended = true
    clearTimeout(run.idle)
    run.finish()
    wake(run.waiters)
  }
  const touch = <T extends { idle: NodeJS.Timeout }>(held: T): T => {
    held.idle.refresh()
    return held
  }
  const idleTimer = (fn: () => void): NodeJS.Timeout => setTimeout(fn, settings.idleTimeout).unref()
  const runState = (run: Run) => ({ room: run.room, runId: run.runId, cancelled: run.reason !== undefined, reason: run.reason })

  // Runs

  const runBody = S.validator(S.RunBody)
  const runOf = (query: unknown): Run => {
    const { room, runId } = query as { room?: unknown; runId?: unknown }
    const run = runs.get(runKey(String(room), String(runId)))
    if (run === undefined) throw new ApiError(404, ApiErrorCode.NotFound, `no run "${String(runId)}" of "${String(room)}" here`)
    return touch(run)
  }
  app.post(`${base}/runs`, async (request, reply) => {
    const { room, runId } = runBody(request.body)
    checkRoom(hub, room, '/room')
    reply.code(201)
    return runState(register(room, runId))
  })
  app.get(`${base}/runs`, async (request) => {
    const run = runOf(request.query)
    await longPoll(run.waiters, waitOf(request.query), () => run.reason !== undefined || run.ended)
    return runState(run)
  })
  app.delete(`${base}/runs`, async (request, reply) => {
    end(runOf(request.query))
    return reply.code(204).send()
  })
  app.post(`${base}/cancel`, async (request) => {
    const { room, runId } = runBody(request.body)
    checkRoom(hub, room, '/room')
    await viaAdapter(api.cancel({ room, runId }))
    return { room, runId }
  })

  // Token streams

  const streamBody = S.validator(S.StreamBody)
  const appendBody = S.validator(S.AppendBody)
  const streamOf = (params: unknown): Stream => {
    const { id } = params as { id: string }
    const stream = streams.get(id)
    if (stream === undefined) throw new ApiError(404, ApiErrorCode.NotFound, `no open stream "${id}" here`)
    return touch(stream)
  }
  const finishStream = async (id: string, stream: Stream) => {
    streams.delete(id)
    clearTimeout(stream.idle)
    try {
      return await viaAdapter(stream.handle.end())
    } finally {
      if (stream.run !== undefined && stream.ownsRun) end(stream.run)
    }
  }
  app.post(`${base}/streams`, async (request, reply) => {
    const body = streamBody(request.body)
    checkEvent(hub, body, '')
    const field = body.field ?? 'content'
    if (typeof (body.data as Record<string, unknown> | null)?.[field] !== 'string') {
      throw new ApiError(
        400,
        ApiErrorCode.InvalidMessage,
        `data.${field} must be a string, the text the stream appends to`,
        `/data/${field}`
      )
    }
    const handle = api.stream(body.room, { type: body.type, data: body.data } as never, { field, window: body.window })
    const ownsRun = body.runId !== undefined && !runs.has(runKey(body.room, body.runId))
    const run = body.runId === undefined ? undefined : register(body.room, body.runId)
    const stream: Stream = {
      handle,
      room: body.room,
      run,
      ownsRun,
      idle: idleTimer(() =>
        detach(hub.log, 'realtime idle stream could not be ended', { stream: handle.id, room: body.room }, finishStream(handle.id, stream))
      )
    }
    streams.set(handle.id, stream)
    reply.code(201)
    return { id: handle.id, room: body.room }
  })
  app.post(`${base}/streams/:id/append`, async (request) => {
    const stream = streamOf(request.params)
    const { text } = appendBody(request.body)
    stream.handle.append(text)
    const reason = stream.run?.reason
    return { id: stream.handle.id, length: stream.handle.text.length, cancelled: reason !== undefined, reason }
  })
  app.post(`${base}/streams/:id/end`, async (request) => {
    const stream = streamOf(request.params)
    const reason = stream.run?.reason
    const position = await finishStream(stream.handle.id, stream)
    return { id: stream.handle.id, ...position, cancelled: reason !== undefined, reason }
  })

  // Questions

  const questionBody = S.validator(S.QuestionBody)
  app.post(`${base}/questions`, async (request, reply) => {
    const body = questionBody(request.body)
    if ((body.room === undefined) === (body.user === undefined)) {
      throw new ApiError(400, ApiErrorCode.InvalidMessage, 'give either "room" or "user"', '')
    }
    const room = body.room ?? `user:${body.user}`
    checkEvent(hub, { room, type: body.type, data: body.data }, '')
    const key = request.headers['idempotency-key']
    const options = { timeout: body.timeout, idempotencyKey: typeof key === 'string' ? checkKey(key) : undefined }
    const id = await viaAdapter(
      new Promise<string>((resolve, reject) => {
        const answer = agent.questions.ask(room, { type: body.type, data: body.data }, options, (id) => {
          resolve(id)
          track(id, answer)
        })
        answer.catch(reject)
      })
    )
    reply.code(201)
    return { id, room }
  })
  const track = (id: string, answer: Promise<unknown>): void => {
    const question = questions.get(id) ?? { state: { id, status: 'pending' }, waiters: new Set() }
    questions.set(id, question)
    const settle = (state: S.QuestionState): void => {
      question.state = state
      wake(question.waiters)
      // Kept a while for the asker to read, then forgotten.
      setTimeout(() => questions.delete(id), settings.idleTimeout).unref()
    }
    answer.then(
      (data) => settle({ id, status: 'answered', answer: data }),
      (err: { code: string; message: string; reply?: { code: string; message: string } }) =>
        settle(
          err.code === 'FST_REALTIME_REQUEST_TIMEOUT'
            ? { id, status: 'timeout' }
            : { id, status: 'declined', error: err.reply ?? { code: err.code, message: err.message } }
        )
    )
  }
  app.get(`${base}/questions/:id`, async (request) => {
    const { id } = request.params as { id: string }
    const question = questions.get(id)
    if (question === undefined) throw new ApiError(404, ApiErrorCode.NotFound, `no question "${id}" asked here`)
    await longPoll(question.waiters, waitOf(request.query), () => question.state.status !== 'pending')
    return question.state
  })

  // Long-polls end when the app closes; runs and streams end with it.
  app.addHook('preClose', async () => {
    closing = true
    for (const run of runs.values()) end(run)
    for (const stream of streams.values()) clearTimeout(stream.idle)
    for (const question of questions.values()) wake(question.waiters)
  })
}
