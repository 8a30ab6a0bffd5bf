import type { EventRegistry, MessageRegistry } from '../events.js'
import { shouldReconnect } from '../protocol/constants.js'
import { MAX_TIMER } from '../protocol/deadline.js'
import type {
  DeltaMessage,
  ErrorMessage,
  EventMessage,
  PresenceChangeMessage,
  PresenceListMessage,
  ReadyMessage,
  RequestMessage,
  StreamMessage,
  SubscribedMessage
} from '../protocol/messages.js'
import {
  type ClientOptions,
  type ClientState,
  type CloseInfo,
  type ConnectionError,
  type RealtimeClient,
  RealtimeClientError,
  type WebSocketConstructor
} from './api.js'
import { backoff } from './backoff.js'
import { type Calls, failCalls, settle, wait } from './calls.js'
import { onDelta, onPresenceChange, onStream } from './features.js'
import { onEvent, onRefused, onSubscribed, onUnsubscribed, type Rooms, sendSubscribe } from './rooms.js'
import type { FetchLike } from './sse-socket.js'
import { StateRooms } from './state.js'
import { clientApi } from './surface.js'
import { CLOSE_KINDS, expiryOf, type Link, preflight } from './transport.js'
import { DEFAULT_TRANSPORTS, TransportPicker } from './transports.js'
import type { ClientTypeName, ServerTypeName } from './wire.js'

/** Every frame a server sends, before it is told apart by `type`. */
type Inbound = { type: string; id?: string; room?: string; data?: unknown }

interface Outgoing {
  readonly text: string
  readonly id: string | undefined
  readonly type: string
}

const encoder = new TextEncoder()

/**
 * Creates a client and starts connecting. Events are typed by the server's registry (`events`, or the
 * first type parameter); `send` and its ack by the `handle()` messages (`messages`, or the second).
 */
export function createClient<E extends EventRegistry = EventRegistry, M extends MessageRegistry = EventRegistry>(
  options: ClientOptions<E, M>
): RealtimeClient<E, M> {
  const globalFetch = (globalThis as { fetch?: FetchLike }).fetch
  const transports = new TransportPicker(
    options.transports ?? DEFAULT_TRANSPORTS,
    options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket,
    options.fetch ?? (globalFetch === undefined ? undefined : globalFetch.bind(globalThis))
  )
  const url = String(options.url)
  if (!/^wss?:\/\/./i.test(url)) throw new TypeError(`fastify-realtime/client: url must be a ws:// or wss:// URL (got "${url}")`)
  const transport = transports.transport()
  const reconnect = options.reconnect === false ? undefined : (options.reconnect ?? {})
  const maxAttempts = reconnect?.maxAttempts ?? Infinity
  const spread = reconnect?.spread ?? reconnect?.initialDelay ?? 2000
  const ackTimeout = options.ackTimeout ?? 10_000
  const heartbeatTimeout = options.heartbeatTimeout ?? 10_000
  const refreshBefore = (options.refreshBeforeExpiry ?? 30) * 1000
  const connectTimeout = options.connectTimeout ?? 10_000
  const random = options.random ?? Math.random
  const onHandlerError =
    options.onHandlerError ??
    ((error: unknown) =>
      queueMicrotask(() => {
        throw error
      }))

  const typeHandlers = new Map<string, Set<(event: never) => void>>()
  const requestHandlers = new Map<string, (data: never) => unknown>()
  const stateListeners = new Set<(state: ClientState, previous: ClientState, close?: CloseInfo) => void>()
  const errorListeners = new Set<(error: ConnectionError) => void>()
  if (options.onError !== undefined) errorListeners.add(options.onError)
  const calls: Calls = new Map()
  const outbox: Outgoing[] = []

  let state: ClientState = 'connecting'
  let link: Link | undefined
  let ready = false
  let attempt = 0
  /** Attempts in a row that ended before a connection opened: the second one asks the endpoint why. */
  let failures = 0
  let counter = 0
  let connectionId: string | undefined
  let userId: string | undefined
  let lastReceived = 0
  /** The server's `limits.maxPayload`, from `ready`. */
  let maxPayload = Infinity
  let pingOutstanding = false
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined
  let watchdog: ReturnType<typeof setInterval> | undefined
  let refreshTimer: ReturnType<typeof setTimeout> | undefined
  let readyTimer: ReturnType<typeof setTimeout> | undefined
  let stableTimer: ReturnType<typeof setTimeout> | undefined

  const nextId = (): string => `c${++counter}`

  /** A throwing handler must not stop the others, nor the rest of a batch. */
  function call<T>(handler: (value: T) => void, value: T): void {
    try {
      handler(value)
    } catch (err) {
      onHandlerError(err)
    }
  }

  /** Connection work nobody awaits (a close, a reconnect, a server request): a throw goes where a handler's does. */
  function detached(work: Promise<void>): void {
    work.catch(onHandlerError)
  }

  const rooms: Rooms = {
    subs: new Map(),
    questionListeners: new Set(),
    stateRooms: new StateRooms((listener, value, ops) => call((v) => listener(v, ops), value)),
    retryTimer: undefined,
    send: (frame) => link?.send(JSON.stringify(frame)),
    nextId,
    call,
    expect: (message, resolve, reject) => expect(message, message.type, undefined, resolve, reject),
    request,
    handlersOf: (type) => typeHandlers.get(type) ?? []
  }

  function setState(next: ClientState, close?: CloseInfo): void {
    if (next === state) return
    const previous = state
    state = next
    for (const listener of stateListeners) listener(next, previous, close)
  }

  function report(error: ConnectionError): void {
    for (const listener of errorListeners) call(listener, error)
  }

  function write(frame: { type: string; id?: string; [key: string]: unknown }): void {
    const out: Outgoing = { text: JSON.stringify(frame), id: frame.id, type: frame.type }
    if (ready) transmit(out)
    else outbox.push(out)
  }

  /** Sends a message with an id and settles with its `ack` or `error`; queued while disconnected. */
  function request(message: { type: string; [key: string]: unknown }, what: string, timeout: number | undefined, id = nextId()) {
    if (state === 'closed') return Promise.reject(new RealtimeClientError('closed', 'the client is closed'))
    return new Promise<unknown>((resolve, reject) => expect(message, what, timeout, resolve, reject, id))
  }

  /** `request` with callbacks, called as the answer is read: before the frames after it in the same batch. */
  function expect(
    message: { type: string; [key: string]: unknown },
    what: string,
    timeout: number | undefined,
    resolve: (data: unknown) => void,
    reject: (err: RealtimeClientError) => void,
    id = nextId()
  ): void {
    wait(calls, id, timeout ?? ackTimeout, what, resolve, reject, () => {
      // Not sent yet: it must not go out later, after the caller was told it failed.
      const queued = outbox.findIndex((o) => o.id === id)
      if (queued !== -1) outbox.splice(queued, 1)
    })
    write({ ...message, id })
  }

  function transmit(out: Outgoing): void {
    // Refused here, with a clear error, rather than losing the connection over it (the server closes with 1009).
    if (out.text.length * 3 > maxPayload && encoder.encode(out.text).length > maxPayload) {
      const message = `the message is larger than the server accepts (${maxPayload} bytes)`
      // A server request's reply declines it; a question's reply (awaited, with its room) fails for the caller.
      if (out.type === ('reply' satisfies ClientTypeName) && !calls.has(out.id as string))
        link?.send(JSON.stringify({ type: 'reply' satisfies ClientTypeName, id: out.id, error: { code: 'too_large', message } }))
      else settle(calls, out.id, new RealtimeClientError('too_large', message))
      return
    }
    if (link?.send(out.text)) {
      const waiter = calls.get(out.id as string)
      if (waiter !== undefined) waiter.sent = true
    }
  }

  async function tokenValue(): Promise<string | undefined> {
    return typeof options.token === 'function' ? await options.token() : options.token
  }

  async function open(): Promise<void> {
    let token: string | undefined
    try {
      token = await tokenValue()
    } catch (cause) {
      // No token now (e.g. the refresh endpoint is down): a failed attempt like any other.
      if (state === 'closed') return
      report({ kind: 'token', reason: String((cause as Error)?.message ?? cause), cause, retrying: willRetry(true) })
      retryOrFinish(true)
      return
    }
    if (state === 'closed') return
    // A replaced link is detached (stopConnection), so these only ever see the current one.
    link = transport.open(url, token, {
      message(text) {
        lastReceived = Date.now()
        pingOutstanding = false
        let parsed: unknown
        try {
          parsed = JSON.parse(text)
        } catch {
          return // A realtime.v1 server sends only JSON; anything else is dropped.
        }
        for (const frame of Array.isArray(parsed) ? parsed : [parsed]) receive(frame as Inbound, token)
      },
      close: (code, reason, opened) => detached(lost(code, reason, opened, token))
    })
    // A server that upgrades but never says `ready` (or a connect that hangs) is a failed attempt.
    readyTimer = setTimeout(replace, connectTimeout)
  }

  function receive(frame: Inbound, token: string | undefined): void {
    const { type, id, room } = frame
    switch (type as ServerTypeName) {
      case 'ready':
        onReady(frame as ReadyMessage, token)
        return
      case 'subscribed':
        onSubscribed(rooms, frame as SubscribedMessage)
        return
      case 'unsubscribed':
        onUnsubscribed(rooms, room as string, id)
        return
      case 'pong':
        return
      case 'ack':
        settle(calls, id, undefined, frame.data)
        return
      case 'presence':
        settle(calls, id, undefined, (frame as PresenceListMessage).data.members)
        return
      case 'error': {
        const { data } = frame as ErrorMessage
        const error = new RealtimeClientError(data.code, data.message)
        if (!onRefused(rooms, frame as ErrorMessage, error)) settle(calls, id, error)
        return
      }
      case 'join':
      case 'leave':
        onPresenceChange(rooms, frame as PresenceChangeMessage)
        return
      case 'stream':
        onStream(rooms, room as string, (frame as StreamMessage).data)
        return
      case 'delta':
        onDelta(rooms, frame as DeltaMessage)
        return
    }
    if (room === undefined && id !== undefined) detached(answer(frame as RequestMessage))
    else onEvent(rooms, frame as EventMessage)
  }

  function onReady({ data }: ReadyMessage, token: string | undefined): void {
    ready = true
    failures = 0
    clearTimeout(readyTimer)
    // The backoff starts over only once a connection has lasted; one closed at once (4029, 4008) keeps growing it.
    stableTimer = setTimeout(() => {
      attempt = 0
    }, data.heartbeatMs)
    connectionId = data.connectionId
    maxPayload = data.maxPayload ?? Infinity
    userId = data.userId
    startWatchdog(data.heartbeatMs)
    scheduleRefresh(token)
    for (const sub of rooms.subs.values()) if (sub.explicit) sendSubscribe(rooms, sub)
    for (const out of outbox.splice(0)) transmit(out)
    setState('open')
  }

  /** Answers a server request: the handler's value is the reply; a throw (or no handler) declines it with a code. */
  async function answer(frame: RequestMessage): Promise<void> {
    let body: { data: unknown } | { error: { code: string; message: string } }
    try {
      const handler = requestHandlers.get(frame.type)
      if (handler === undefined) throw new RealtimeClientError('unhandled', `no handler for "${frame.type}"`)
      body = { data: (await handler(frame.data as never)) ?? null }
    } catch (err) {
      const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown }
      body = { error: { code: typeof code === 'string' ? code : 'declined', message: String(message ?? err).slice(0, 1024) } }
    }
    write({ type: 'reply' satisfies ClientTypeName, id: frame.id, ...body })
  }

  function startWatchdog(heartbeatMs: number): void {
    clearInterval(watchdog)
    lastReceived = Date.now()
    pingOutstanding = false
    // Browsers cannot see protocol pings: after a silent interval, ask with an app-level ping.
    watchdog = setInterval(
      () => {
        if (Date.now() - lastReceived < heartbeatMs) return
        if (pingOutstanding) {
          replace()
          return
        }
        pingOutstanding = true
        link?.send(JSON.stringify({ type: 'ping' satisfies ClientTypeName }))
      },
      Math.min(heartbeatMs, heartbeatTimeout)
    )
  }

  function scheduleRefresh(token: string | undefined): void {
    clearTimeout(refreshTimer)
    const exp = token === undefined || typeof options.token !== 'function' ? undefined : expiryOf(token)
    if (exp === undefined) return
    const remaining = exp * 1000 - Date.now()
    // `refreshBeforeExpiry` ahead, or half-way through a short-lived token, and never sooner than a second.
    const wait = Math.max(remaining - refreshBefore, remaining / 2, 1000)
    // Past the timer's limit (about 24.8 days), wake up then and look again.
    refreshTimer = wait > MAX_TIMER ? setTimeout(scheduleRefresh, MAX_TIMER, token) : setTimeout(refresh, wait)
  }

  async function refresh(): Promise<void> {
    let fresh: string | undefined
    try {
      fresh = await tokenValue()
    } catch {
      return // The server closes with 4001 at expiry; the reconnect asks for a token again.
    }
    // Closed or reconnecting meanwhile: a new connection asks for its own token.
    if (!ready) return
    write({ type: 'auth' satisfies ClientTypeName, data: { token: fresh } })
    scheduleRefresh(fresh)
  }

  /** The server went silent (or never said `ready`): drop the link without waiting for a close handshake. */
  function replace(): void {
    link?.drop()
    detached(lost(1006, 'heartbeat timeout', ready, undefined))
  }

  function stopConnection(): void {
    link = undefined
    ready = false
    connectionId = undefined
    clearInterval(watchdog)
    clearTimeout(refreshTimer)
    clearTimeout(readyTimer)
    clearTimeout(stableTimer)
    clearTimeout(rooms.retryTimer)
    rooms.retryTimer = undefined
    // What was written to the lost link fails; what is still queued goes out on the next connection.
    failCalls(calls, 'disconnected', 'the connection was lost before the ack', true)
  }

  /** The link closed (close() detaches it first, so this never runs after the client was closed). */
  async function lost(code: number, reason: string, opened: boolean, token: string | undefined): Promise<void> {
    const wasReady = ready
    stopConnection()
    const close = { code, reason }
    let retry = shouldReconnect(code)
    const kind = CLOSE_KINDS[code] ?? (code >= 4500 && code < 5000 ? 'revoked' : undefined)
    if (kind !== undefined) report({ kind, code, reason, retrying: willRetry(retry) })
    // A browser's WebSocket cannot see why an upgrade failed: on the second failure in a row, ask over HTTP.
    if (!opened && ++failures === 2) {
      setState('reconnecting', close)
      const refusal = await preflight(url, token)
      if (state === 'closed') return
      const status = refusal?.status
      retry = status !== 401 && status !== 403
      const reason = (refusal?.body as { message?: string } | undefined)?.message
      report({
        kind: retry ? 'unreachable' : 'refused',
        reason: reason ?? (status ? `HTTP ${status}` : 'no answer from the endpoint'),
        status,
        body: refusal?.body,
        retrying: willRetry(retry)
      })
    }
    // Links that never said `ready` and were not refused: the network may not let this transport through; try the next.
    if (!wasReady && retry && failures >= 2) transports.failed()
    retryOrFinish(retry, close)
  }

  function willRetry(retry: boolean): boolean {
    return reconnect !== undefined && retry && attempt < maxAttempts
  }

  function retryOrFinish(retry: boolean, close?: CloseInfo): void {
    if (!willRetry(retry)) {
      finish(close)
      return
    }
    setState('reconnecting', close)
    // The first attempt is spread over its own window, so that clients dropped together by a restart do not return together.
    const delay = attempt === 0 ? Math.floor(random() * spread) : backoff(attempt, reconnect, random)
    attempt++
    reconnectTimer = setTimeout(() => detached(open()), delay)
  }

  function finish(close?: CloseInfo): void {
    clearTimeout(reconnectTimer)
    outbox.length = 0
    failCalls(calls, 'closed', 'the client closed', false)
    setState('closed', close)
  }

  detached(open())

  return clientApi({
    state: () => state,
    transport: () => transports.current,
    connectionId: () => connectionId,
    userId: () => userId,
    ready: () => ready,
    rooms,
    request,
    typeHandlers,
    requestHandlers,
    stateListeners,
    errorListeners,
    close() {
      if (state === 'closed') return
      const current = link
      // Pending acks fail as `closed` (not `disconnected`), so they go before the link is let go.
      failCalls(calls, 'closed', 'the client closed', false)
      stopConnection()
      finish()
      current?.close(1000, 'client closed')
    }
  }) as never
}
