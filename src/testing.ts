import type { IncomingMessage } from 'node:http'
import type { Static } from '@sinclair/typebox'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { RealtimeClientError, type SubscribeInfo } from './client/api.js'
import type { EventRegistry } from './events.js'
import { ClientType, ServerType, SUBPROTOCOL } from './protocol/constants.js'
import type { ErrorMessage, ReadyMessage, ServerControlMessage } from './protocol/messages.js'
import { kPath, type RegisteredEvents } from './types.js'

/**
 * `fastify-realtime/testing`: a client for the tests of an application that uses the plugin. It speaks
 * `realtime.v1` over a real socket (or through `injectWS` when the app does not listen), queues every frame so
 * none is missed between two awaits, and is typed by the application's registry like the client SDK.
 */

export interface ConnectTestOptions {
  /** The user to connect as: a token for `{ sub: user, ...claims }` is signed with `app.jwt`. Default `'test-user'`. */
  user?: string
  /** More claims for the signed token (e.g. `exp`, roles). */
  claims?: Record<string, unknown>
  /** A token to use as is, instead of one signed for `user`. */
  token?: string
  /** More headers for the upgrade (e.g. `origin`). */
  headers?: Record<string, string>
  /**
   * `socket` connects to the app's address (it must listen, e.g. on port 0); `inject` goes through @fastify/websocket's
   * `injectWS`, with no network at all. Default: `socket` when the app listens, else `inject`.
   */
  transport?: 'socket' | 'inject'
  /** Milliseconds `next`, `send` and `subscribe` wait before they fail. Default 5 000. */
  timeout?: number
}

/** A frame as the server sent it. */
export interface TestFrame {
  type: string
  id?: string
  room?: string
  seq?: number
  data?: unknown
  ts?: string
  [field: string]: unknown
}

/** A registry event (or a server request, which has an `id` and no `room`) of one type. */
export interface TestEvent<E extends EventRegistry, K extends keyof E & string> {
  type: K
  /** Absent on a server request. */
  room?: string
  /** Present on a server request: answer it with `answer()`. */
  id?: string
  /** Absent on volatile events and server requests. */
  seq?: number
  data: Static<E[K]>
  ts?: string
}

export interface NextOptions {
  /** Only a frame of this room. */
  room?: string
  /** Milliseconds to wait; default the client's `timeout`. */
  timeout?: number
}

export interface TestClient<E extends EventRegistry = RegisteredEvents, M extends EventRegistry = EventRegistry> {
  readonly connectionId: string
  readonly userId: string
  /** Frames received and not yet taken by `next`, oldest first. */
  readonly queue: readonly TestFrame[]
  /** Subscribes (or resumes from `since`/`epoch`); rejects with the server's error code (`forbidden`, …). */
  subscribe(room: string, resume?: { since: number; epoch: string }): Promise<SubscribeInfo>
  unsubscribe(room: string): Promise<void>
  /**
   * Takes the first queued frame of `type` (and `room`), waiting for it; frames before it stay queued.
   * Without a type, the next frame of any type.
   */
  next<K extends keyof E & string>(type: K, options?: NextOptions): Promise<TestEvent<E, K>>
  /** A control message, typed as the protocol types it. */
  next<T extends ServerControlMessage['type']>(type: T, options?: NextOptions): Promise<Extract<ServerControlMessage, { type: T }>>
  next(type?: (typeof ServerType)[keyof typeof ServerType], options?: NextOptions): Promise<TestFrame>
  /** Sends a `handle()` message and resolves with its ack; rejects with a `RealtimeClientError` carrying the error code. */
  send<K extends keyof M & string, R = unknown>(type: K, data: Static<M[K]>): Promise<R>
  /** Cancels a run (`app.realtime.run()`); resolves with the ack, rejects with the error code (`forbidden`, …). */
  cancel(room: string, runId: string): Promise<void>
  /**
   * Answers a server request, or a question (`ask()`: an event with an `id`, answered with its `room`), with `reply`.
   * A question's answer is acknowledged (`ack`, or `already_answered`): take it with `next`.
   */
  answer(request: { readonly id?: string; readonly room?: string }, data: unknown): void
  /** Declines a server request or a question: a `reply` with an error. */
  decline(request: { readonly id?: string; readonly room?: string }, code: string, message?: string): void
  /** Sends any JSON value (or a string as is), for testing what the server does with it. */
  raw(message: unknown): void
  /** Resolves with the close code and reason once the connection has closed. */
  readonly closed: Promise<{ code: number; reason: string }>
  /** Closes the connection (1000) and resolves once it is closed. */
  close(): Promise<{ code: number; reason: string }>
}

interface Waiter {
  readonly match: (frame: TestFrame) => boolean
  readonly resolve: (frame: TestFrame) => void
  readonly reject: (err: Error) => void
  readonly timer: NodeJS.Timeout
}

type Injectable = FastifyInstance & {
  injectWS?: (path: string, context: { headers: Record<string, string> }, options: { onInit(ws: WebSocket): void }) => Promise<WebSocket>
  jwt: { sign(payload: object): string }
}

export { RealtimeClientError, type SubscribeInfo }

/** The endpoint's path, which the plugin leaves on `app.realtime` for this client. */
function endpoint(app: FastifyInstance): string {
  const path = (app.realtime as { [kPath]?: string } | undefined)?.[kPath]
  if (path === undefined) throw new TypeError('connectTest: register fastify-realtime on this app first')
  return path
}

/**
 * Connects to the app as `user` and waits for `ready`. Typed by the registry merged into `RealtimeRegistry`
 * (or pass `<typeof events, typeof messages>`). The connection closes with the app, so a test needs no cleanup.
 */
export async function connectTest<E extends EventRegistry = RegisteredEvents, M extends EventRegistry = EventRegistry>(
  app: FastifyInstance,
  options: ConnectTestOptions = {}
): Promise<TestClient<E, M>> {
  const target = app as Injectable
  const path = endpoint(app)
  const limit = options.timeout ?? 5000
  // The plugin makes sure the app has @fastify/jwt (its own, or the app's).
  const token = options.token ?? target.jwt.sign({ ...options.claims, sub: options.user ?? 'test-user' })
  const headers = { ...options.headers, authorization: `Bearer ${token}` }
  const transport = options.transport ?? (app.server.listening ? 'socket' : 'inject')

  const queue: TestFrame[] = []
  const waiters = new Set<Waiter>()
  let counter = 0
  let closeInfo: { code: number; reason: string } | undefined
  let onClosed!: (info: { code: number; reason: string }) => void
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    onClosed = resolve
  })

  const deliver = (frame: TestFrame): void => {
    for (const w of waiters) {
      if (!w.match(frame)) continue
      waiters.delete(w)
      clearTimeout(w.timer)
      w.resolve(frame)
      return
    }
    queue.push(frame)
  }

  const listen = (ws: WebSocket): void => {
    ws.on('message', (data) => {
      // A frame may hold one message or, batched, an array of them.
      for (const frame of [JSON.parse(String(data)) as TestFrame | TestFrame[]].flat()) deliver(frame)
    })
    ws.on('close', (code, reason) => {
      closeInfo = { code, reason: reason.toString() }
      for (const w of waiters) {
        clearTimeout(w.timer)
        w.reject(new Error(`connectTest: the connection closed (${code}) while a frame was awaited`))
      }
      waiters.clear()
      onClosed(closeInfo)
    })
    ws.on('error', () => {})
  }

  let ws: WebSocket
  if (transport === 'inject') {
    const inject = (app as Injectable).injectWS as NonNullable<Injectable['injectWS']>
    // injectWS sends Sec-WebSocket-Version as the number 13, which ws 8.23.1 and later refuse: they compare it with
    // the string '13', as a header off the network always is. injectWS emits its upgrade synchronously, so this
    // listener, ahead of @fastify/websocket's, sees exactly that request.
    app.server.prependOnceListener('upgrade', (request: IncomingMessage) => {
      request.headers['sec-websocket-version'] = String(request.headers['sec-websocket-version'])
    })
    ws = await inject(path, { headers }, { onInit: listen }).catch((err: Error) => {
      throw new Error(`connectTest: the upgrade was refused (${err.message})`)
    })
  } else {
    if (!app.server.listening) throw new TypeError('connectTest: the app does not listen; call app.listen({ port: 0 }) first')
    ws = new WebSocket(`${app.listeningOrigin.replace(/^http/, 'ws')}${path}`, [SUBPROTOCOL], { headers })
    listen(ws)
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
      ws.once('unexpected-response', (_req, res) => {
        reject(new Error(`connectTest: the upgrade was refused (HTTP ${res.statusCode})`))
        ws.terminate()
      })
    })
  }

  function take(match: (frame: TestFrame) => boolean, what: string, ms = limit): Promise<TestFrame> {
    const i = queue.findIndex(match)
    if (i !== -1) return Promise.resolve(queue.splice(i, 1)[0] as TestFrame)
    if (closeInfo !== undefined) return Promise.reject(new Error(`connectTest: the connection is closed (${closeInfo.code}); no ${what}`))
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        match,
        resolve,
        reject,
        timer: setTimeout(() => {
          waiters.delete(waiter)
          const seen = queue.map((f) => f.type).join(', ') || 'nothing'
          reject(new Error(`connectTest: no ${what} within ${ms} ms (queued: ${seen})`))
        }, ms)
      }
      waiters.add(waiter)
    })
  }

  /** Sends a message with a fresh id and takes the answer that carries it; an `error` rejects. */
  async function call(message: Record<string, unknown>, what: string): Promise<TestFrame> {
    const id = `t${++counter}`
    ws.send(JSON.stringify({ ...message, id }))
    const answer = await take((f) => f.id === id, `answer to ${what}`)
    if (answer.type === ServerType.Error) {
      const { code, message } = (answer as ErrorMessage).data
      throw new RealtimeClientError(code, message)
    }
    return answer
  }

  const ready = (await take((f) => f.type === ServerType.Ready, 'ready')) as ReadyMessage

  return {
    connectionId: ready.data.connectionId,
    userId: ready.data.userId,
    queue,
    closed,
    async subscribe(room, resume) {
      const answer = await call({ type: ClientType.Subscribe, room, data: resume }, `subscribe "${room}"`)
      return answer.data as SubscribeInfo
    },
    async unsubscribe(room) {
      await call({ type: ClientType.Unsubscribe, room }, `unsubscribe "${room}"`)
    },
    next(type?: string, opts: NextOptions = {}) {
      const what = `${type ?? 'frame'}${opts.room === undefined ? '' : ` in "${opts.room}"`}`
      return take((f) => (type === undefined || f.type === type) && (opts.room === undefined || f.room === opts.room), what, opts.timeout)
    },
    async send(type, data) {
      return (await call({ type, data }, `"${type}"`)).data
    },
    async cancel(room, runId) {
      await call({ type: ClientType.Cancel, room, data: { runId } }, `cancel "${runId}"`)
    },
    answer(request, data) {
      ws.send(JSON.stringify({ type: ClientType.Reply, id: request.id, room: request.room, data }))
    },
    decline(request, code, message = '') {
      ws.send(JSON.stringify({ type: ClientType.Reply, id: request.id, room: request.room, error: { code, message } }))
    },
    raw(message) {
      ws.send(typeof message === 'string' ? message : JSON.stringify(message))
    },
    close() {
      ws.close(1000)
      return closed
    }
  } as TestClient<E, M>
}
