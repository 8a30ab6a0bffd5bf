import type { EventRegistry } from '../events.js'
import { BEARER_PREFIX, ClientType, ErrorCode, ServerType, SUBPROTOCOL, shouldReconnect } from '../protocol/constants.js'
import type {
  ClientOptions,
  ClientState,
  PresenceChange,
  PresenceMember,
  RealtimeClient,
  SubscribeOptions,
  WebSocketConstructor,
  WebSocketLike
} from './api.js'
import { RealtimeClientError } from './api.js'
import { backoff } from './backoff.js'
import type { FetchLike } from './sse-socket.js'
import { DEFAULT_TRANSPORTS, TransportPicker } from './transports.js'

/** A token stream of a room as the client assembles it. */
interface OpenStream {
  readonly id: string
  readonly type: string
  readonly field: string
  readonly data: Record<string, unknown>
  readonly ts: string
  text: string
}

/** A question of a room (`ask()`), waiting for its first answer. */
interface OpenQuestion {
  readonly id: string
  readonly room: string
  readonly type: string
  readonly data: unknown
  readonly ts: string
}

interface Sub {
  readonly room: string
  /** The room's open token streams, by id. */
  streams: Map<string, OpenStream>
  /** The room's questions (`ask()`) waiting for an answer, by id. */
  questions: Map<string, OpenQuestion>
  readonly handler: ((event: any) => void) | undefined
  readonly options: SubscribeOptions
  /** False for rooms the server joined the client to: those are not resubscribed on reconnect. */
  readonly explicit: boolean
  seq: number
  epoch: string | undefined
  pendingId: string | undefined
  /** Refused as rate-limited: to be asked again by the retry timer. */
  retry: boolean
  /** With `onPresence`: the members by user, once the list arrived; until then the changes wait in `early`. */
  members: Map<string, PresenceMember> | undefined
  early: PresenceChange[]
}

interface Pending {
  readonly resolve: (data: any) => void
  readonly reject: (err: RealtimeClientError) => void
  readonly timer: ReturnType<typeof setTimeout>
  /** Written to a socket (a lost connection fails it) rather than still queued (it goes out after reconnecting). */
  sent: boolean
}

interface Outgoing {
  readonly text: string
  readonly id: string | undefined
  readonly type: string
}

const OPEN = 1
const encoder = new TextEncoder()
const MAX_TIMER = 2 ** 31 - 1

/** Reads `exp` from a JWT without verifying it (the server does that). */
function expiryOf(token: string): number | undefined {
  try {
    const part = token.split('.')[1] as string
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'))
    const exp = JSON.parse(json).exp
    return typeof exp === 'number' ? exp : undefined
  } catch {
    return undefined
  }
}

/**
 * Creates a client and starts connecting. Events are typed by the server's registry (`events`, or the
 * first type parameter); `send` by the `handle()` messages (`messages`, or the second).
 */
export function createClient<E extends EventRegistry = EventRegistry, M extends EventRegistry = EventRegistry>(
  options: ClientOptions<E, M>
): RealtimeClient<E, M> {
  const globalFetch = (globalThis as { fetch?: FetchLike }).fetch
  const transports = new TransportPicker(
    options.transports ?? DEFAULT_TRANSPORTS,
    options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket,
    options.fetch ?? (globalFetch === undefined ? undefined : globalFetch.bind(globalThis))
  )
  if (!/^wss?:\/\/./i.test(String(options.url))) {
    throw new TypeError(`fastify-realtime/client: url must be a ws:// or wss:// URL (got "${String(options.url)}")`)
  }
  const reconnect = options.reconnect === false ? undefined : (options.reconnect ?? {})
  const maxAttempts = reconnect?.maxAttempts ?? Number.POSITIVE_INFINITY
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

  const subs = new Map<string, Sub>()
  const typeHandlers = new Map<string, Set<(event: any) => void>>()
  const requestHandlers = new Map<string, (data: any) => unknown>()
  const questionListeners = new Set<(questions: any[]) => void>()
  const stateListeners = new Set<(state: ClientState, previous: ClientState) => void>()
  const pending = new Map<string, Pending>()
  const outbox: Outgoing[] = []

  let state: ClientState = 'connecting'
  let socket: WebSocketLike | undefined
  let ready = false
  let attempt = 0
  let counter = 0
  let connectionId: string | undefined
  let userId: string | undefined
  let lastReceived = 0
  /** The server's `limits.maxPayload`, from `ready`. */
  let maxPayload = Number.POSITIVE_INFINITY
  let pingOutstanding = false
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined
  let watchdog: ReturnType<typeof setInterval> | undefined
  let refreshTimer: ReturnType<typeof setTimeout> | undefined
  let readyTimer: ReturnType<typeof setTimeout> | undefined
  let stableTimer: ReturnType<typeof setTimeout> | undefined
  /** One timer for every subscribe refused as rate-limited: they are asked again together. */
  let retryTimer: ReturnType<typeof setTimeout> | undefined

  const nextId = (): string => `c${++counter}`

  function setState(next: ClientState): void {
    if (next === state) return
    const previous = state
    state = next
    for (const listener of stateListeners) listener(next, previous)
  }

  function write(frame: { type: string; id?: string; [key: string]: unknown }): void {
    const out: Outgoing = { text: JSON.stringify(frame), id: frame.id, type: frame.type }
    if (ready && socket?.readyState === OPEN) transmit(out)
    else outbox.push(out)
  }

  /** Sends a message with an id and settles with its `ack` or `error`; queued while disconnected. */
  function request(
    message: { type: string; [key: string]: unknown },
    what: string,
    timeoutMs: number | undefined,
    id = nextId()
  ): Promise<any> {
    if (state === 'closed') return Promise.reject(new RealtimeClientError('closed', 'the client is closed'))
    return new Promise((resolve, reject) => expect(message, what, timeoutMs, resolve, reject, id))
  }

  /** `request` with callbacks, called as the answer is read: before the frames after it in the same batch. */
  function expect(
    message: { type: string; [key: string]: unknown },
    what: string,
    timeoutMs: number | undefined,
    resolve: (data: any) => void,
    reject: (err: RealtimeClientError) => void,
    id = nextId()
  ): void {
    const timeout = timeoutMs ?? ackTimeout
    const timer = setTimeout(() => {
      // Not sent yet: it must not go out later, after the caller was told it failed.
      const queued = outbox.findIndex((o) => o.id === id)
      if (queued !== -1) outbox.splice(queued, 1)
      settle(id, new RealtimeClientError('timeout', `no ack for "${what}" within ${timeout} ms`))
    }, timeout)
    pending.set(id, { resolve, reject, timer, sent: false })
    write({ ...message, id })
  }

  /** Whether the server would refuse the frame as too big (it closes the connection with 1009 for one). */
  function tooLarge(text: string): boolean {
    return text.length * 3 > maxPayload && encoder.encode(text).length > maxPayload
  }

  function transmit(out: Outgoing): void {
    if (tooLarge(out.text)) {
      // Refused here, with a clear error, rather than losing the connection over it.
      const message = `the message is larger than the server accepts (${maxPayload} bytes)`
      // A server request's reply declines it; a question's reply (awaited, with its room) fails for the caller.
      if (out.type === ClientType.Reply && !pending.has(out.id as string))
        socket?.send(JSON.stringify({ type: ClientType.Reply, id: out.id, error: { code: 'too_large', message } }))
      else settle(out.id, new RealtimeClientError('too_large', message))
      return
    }
    socket?.send(out.text)
    const entry = out.id === undefined ? undefined : pending.get(out.id)
    if (entry !== undefined) entry.sent = true
  }

  async function tokenValue(): Promise<string | undefined> {
    return typeof options.token === 'function' ? await options.token() : options.token
  }

  async function open(): Promise<void> {
    let token: string | undefined
    try {
      token = await tokenValue()
    } catch {
      // No token now (e.g. the refresh endpoint is down): a failed attempt like any other.
      if (state !== 'closed') retryOrFinish(true)
      return
    }
    if (state === 'closed') return
    const ws = transports.open(options.url, token === undefined ? [SUBPROTOCOL] : [SUBPROTOCOL, `${BEARER_PREFIX}${token}`], token)
    socket = ws
    // A replaced socket has its handlers taken away (stopConnection), so these only ever see the current one.
    ws.onmessage = (ev) => {
      lastReceived = Date.now()
      pingOutstanding = false
      let parsed: unknown
      try {
        parsed = JSON.parse(String(ev.data))
      } catch {
        return // A realtime.v1 server sends only JSON; anything else is dropped.
      }
      for (const frame of Array.isArray(parsed) ? parsed : [parsed]) receive(frame, token)
    }
    ws.onclose = (ev) => lost(ev.code, ev.reason)
    // A server that upgrades but never says `ready` (or a connect that hangs) is a failed attempt.
    readyTimer = setTimeout(replace, connectTimeout)
    // A refused upgrade (401, 403, network down) ends in onclose as well.
    ws.onerror = () => {}
  }

  function receive(frame: any, token: string | undefined): void {
    const { type, id, room } = frame
    switch (type) {
      case ServerType.Ready:
        ready = true
        clearTimeout(readyTimer)
        // The backoff starts over only once a connection has lasted; one closed at once (4029, 4008) keeps growing it.
        stableTimer = setTimeout(() => {
          attempt = 0
        }, frame.data.heartbeatMs)
        connectionId = frame.data.connectionId
        maxPayload = frame.data.maxPayload ?? Number.POSITIVE_INFINITY
        userId = frame.data.userId
        startWatchdog(frame.data.heartbeatMs)
        scheduleRefresh(token)
        for (const sub of subs.values()) if (sub.explicit) sendSubscribe(sub)
        for (const out of outbox.splice(0)) transmit(out)
        setState('open')
        return
      case ServerType.Subscribed:
        onSubscribed(frame)
        return
      case ServerType.Unsubscribed: {
        // With an id it answers one of our messages; without, the server made this connection leave the room.
        const sub = subs.get(room)
        if (id === undefined && sub?.pendingId === undefined) subs.delete(room)
        return
      }
      case ServerType.Pong:
        return
      case ServerType.Ack:
        settle(id, undefined, frame.data)
        return
      case ServerType.Error:
        onError(frame)
        return
      case ServerType.Presence:
        settle(id, undefined, frame.data.members)
        return
      case ServerType.Join:
      case ServerType.Leave:
        onPresenceChange(frame)
        return
      case ServerType.Stream:
        onStream(frame.room, frame.data)
        return
      case ServerType.Delta:
        onDelta(frame)
        return
    }
    if (room === undefined && id !== undefined) void answer(frame)
    else onEvent(frame)
  }

  function sendSubscribe(sub: Sub): void {
    sub.retry = false
    sub.pendingId = nextId()
    const data = sub.epoch === undefined ? undefined : { since: sub.seq, epoch: sub.epoch }
    socket?.send(JSON.stringify({ type: ClientType.Subscribe, id: sub.pendingId, room: sub.room, data }))
  }

  /** A subscription with nothing received yet, in place of any earlier one of the room. */
  function newSub(room: string, handler: Sub['handler'], subOptions: SubscribeOptions, explicit: boolean): Sub {
    const sub: Sub = {
      room,
      streams: new Map(),
      questions: new Map(),
      handler,
      options: subOptions,
      explicit,
      seq: 0,
      epoch: undefined,
      pendingId: undefined,
      retry: false,
      members: undefined,
      early: []
    }
    subs.set(room, sub)
    return sub
  }

  function onSubscribed(frame: any): void {
    let sub = subs.get(frame.room)
    // With an id it answers one of our subscribes: only the latest one for the room counts. An older answer (to a
    // subscribe since unsubscribed, replaced or sent again) must not touch the current subscription.
    if (frame.id !== undefined && sub?.pendingId !== frame.id) return
    if (sub === undefined) {
      // The server joined this connection to a room.
      sub = newSub(frame.room, undefined, {}, false)
    }
    const { seq, epoch, recovered, snapshot, streams = [], questions = [] } = frame.data
    sub.pendingId = undefined
    sub.epoch = epoch
    if (!recovered) sub.seq = seq
    if (sub.options.onPresence !== undefined) askPresence(sub)
    sub.options.onSubscribed?.({ recovered, seq, epoch, snapshot })
    // The room's open streams as they stand now: the text so far, which the deltas that follow extend.
    sub.streams = new Map()
    for (const stream of streams) onStream(frame.room, stream)
    // The questions still open now; a replayed one comes again as an event, a settled one leaves with hitl_resolved.
    sub.questions = new Map(questions.map((q: OpenQuestion) => [q.id, { ...q, room: frame.room }]))
    questionsChanged()
  }

  function questionList(): OpenQuestion[] {
    return [...subs.values()].flatMap((sub) => [...sub.questions.values()]).sort((a, b) => a.ts.localeCompare(b.ts))
  }

  function questionsChanged(): void {
    const list = questionList()
    for (const listener of questionListeners) listener(list)
  }

  /** Replies to a question with its id and room; the server acks the first answer. A settled one is dropped here. */
  function answerQuestion(id: string, body: { data?: unknown; error?: unknown }, timeout: number | undefined): Promise<void> {
    const question = questionList().find((q) => q.id === id)
    if (question === undefined) return Promise.reject(new RealtimeClientError(ErrorCode.UnknownRequest, `no open question "${id}"`))
    return request({ type: ClientType.Reply, room: question.room, ...body }, `reply ${id}`, timeout, id).then(
      () => undefined,
      (err: RealtimeClientError) => {
        if (err.code === ErrorCode.AlreadyAnswered || err.code === ErrorCode.UnknownRequest) {
          subs.get(question.room)?.questions.delete(id)
          questionsChanged()
        }
        throw err
      }
    )
  }

  /** A stream opened (or listed in `subscribed`): handlers get it as a partial event with the text so far. */
  function onStream(room: string, data: OpenStream): void {
    const sub = subs.get(room)
    if (sub === undefined) return
    const stream = { ...data }
    sub.streams.set(stream.id, stream)
    deliver(sub, partial(room, stream))
  }

  function partial(room: string, s: OpenStream): unknown {
    return { type: s.type, room, data: { ...s.data, [s.field]: s.text }, ts: s.ts, stream: s.id, partial: true }
  }

  /** Text appended at `offset`: what the client already has is skipped, a gap asks for the text so far again. */
  function onDelta(frame: any): void {
    const sub = subs.get(frame.room)
    const stream = sub?.streams.get(frame.data.id)
    if (sub === undefined || stream === undefined) return
    const { offset, text } = frame.data
    if (offset > stream.text.length) {
      if (sub.pendingId === undefined) sendSubscribe(sub)
      return
    }
    if (offset + text.length <= stream.text.length) return
    stream.text += text.slice(stream.text.length - offset)
    deliver(sub, partial(frame.room, stream))
  }

  /** Presence is not replayed on resume: after each `subscribed` the list is asked again, and changes applied on top. */
  function askPresence(sub: Sub): void {
    sub.members = undefined
    sub.early = []
    expect(
      { type: ClientType.Presence, room: sub.room },
      ClientType.Presence,
      undefined,
      (list: PresenceMember[]) => {
        if (subs.get(sub.room) !== sub) return
        const members = new Map(list.map((member) => [member.user, member]))
        sub.members = members
        // A join or leave that overtook the answer: applying it again is harmless, skipping it could lose it.
        for (const change of sub.early.splice(0)) applyChange(members, change)
        reportPresence(sub, members, undefined)
      },
      (error: RealtimeClientError) => {
        // A lost connection asks again after the next `subscribed`.
        if (subs.get(sub.room) !== sub || error.code === 'disconnected' || error.code === 'closed') return
        sub.options.onError?.(error)
      }
    )
  }

  function onPresenceChange(frame: any): void {
    const sub = subs.get(frame.room)
    if (sub?.options.onPresence === undefined) return
    const change: PresenceChange = { kind: frame.type, member: frame.data }
    if (sub.members === undefined) {
      sub.early.push(change)
      return
    }
    applyChange(sub.members, change)
    reportPresence(sub, sub.members, change)
  }

  function applyChange(members: Map<string, PresenceMember>, { kind, member }: PresenceChange): void {
    if (kind === 'join') members.set(member.user, member)
    else members.delete(member.user)
  }

  function reportPresence(sub: Sub, members: Map<string, PresenceMember>, change: PresenceChange | undefined): void {
    const onPresence = sub.options.onPresence as NonNullable<SubscribeOptions['onPresence']>
    call((list) => onPresence(list, change), [...members.values()])
  }

  function onEvent(frame: any): void {
    const sub = subs.get(frame.room)
    if (sub === undefined) return
    if (frame.seq !== undefined) {
      if (frame.seq <= sub.seq) return
      if (frame.seq > sub.seq + 1) {
        // A gap (it should not happen): ask once for the missing events again.
        if (sub.pendingId === undefined) sendSubscribe(sub)
        return
      }
      sub.seq = frame.seq
    }
    if (frame.type === ServerType.HitlResolved) {
      if (sub.questions.delete(frame.data.id)) questionsChanged()
      return
    }
    // An event with an id is a question (`ask()`): open until its hitl_resolved.
    if (frame.id !== undefined) {
      sub.questions.set(frame.id, { id: frame.id, room: frame.room, type: frame.type, data: frame.data, ts: frame.ts })
      questionsChanged()
    }
    // The event that ends a stream holds its whole text: the partial one is done.
    if (frame.stream !== undefined) sub.streams.delete(frame.stream)
    deliver(sub, frame)
  }

  function deliver(sub: Sub, event: any): void {
    if (sub.handler !== undefined) call(sub.handler, event)
    for (const handler of typeHandlers.get(event.type) ?? []) call(handler, event)
  }

  /** A throwing handler must not stop the others, nor the rest of a batch. */
  function call<T>(handler: (event: T) => void, frame: T): void {
    try {
      handler(frame)
    } catch (err) {
      onHandlerError(err)
    }
  }

  function retrySubscribes(): void {
    retryTimer = undefined
    for (const sub of subs.values()) if (sub.retry) sendSubscribe(sub)
  }

  function onError(frame: any): void {
    const error = new RealtimeClientError(frame.data.code, frame.data.message)
    const sub = frame.id === undefined ? undefined : [...subs.values()].find((s) => s.pendingId === frame.id)
    if (sub === undefined) {
      settle(frame.id, error)
      return
    }
    sub.pendingId = undefined
    if (error.code === ErrorCode.RateLimited) {
      // Too many subscribes at once (e.g. resubscribing many rooms): ask again in a second.
      sub.retry = true
      retryTimer ??= setTimeout(retrySubscribes, 1000)
      return
    }
    subs.delete(sub.room)
    sub.options.onError?.(error)
  }

  async function answer(frame: any): Promise<void> {
    const handler = requestHandlers.get(frame.type)
    if (handler === undefined) {
      write({ type: ClientType.Reply, id: frame.id, error: { code: 'unhandled', message: `no handler for "${frame.type}"` } })
      return
    }
    try {
      write({ type: ClientType.Reply, id: frame.id, data: (await handler(frame.data)) ?? null })
    } catch (err) {
      const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : 'declined'
      write({ type: ClientType.Reply, id: frame.id, error: { code, message: String((err as Error)?.message ?? err).slice(0, 1024) } })
    }
  }

  function settle(id: string | undefined, error: RealtimeClientError | undefined, data?: unknown): void {
    const entry = id === undefined ? undefined : pending.get(id)
    if (entry === undefined) return
    pending.delete(id as string)
    clearTimeout(entry.timer)
    if (error === undefined) entry.resolve(data)
    else entry.reject(error)
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
        socket?.send(JSON.stringify({ type: ClientType.Ping }))
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
    write({ type: ClientType.Auth, data: { token: fresh } })
    scheduleRefresh(fresh)
  }

  /** The server went silent: drop the socket without waiting for a close handshake, and reconnect. */
  function replace(): void {
    // The watchdog runs only while a socket is open.
    const dead = socket as WebSocketLike
    const terminate = (dead as { terminate?: () => void }).terminate
    if (typeof terminate === 'function') terminate.call(dead)
    else dead.close(4000, 'heartbeat timeout')
    lost(1006, 'heartbeat timeout')
  }

  function stopConnection(): void {
    if (socket !== undefined) {
      socket.onmessage = socket.onclose = socket.onopen = null
    }
    socket = undefined
    ready = false
    connectionId = undefined
    clearInterval(watchdog)
    clearTimeout(refreshTimer)
    clearTimeout(readyTimer)
    clearTimeout(stableTimer)
    clearTimeout(retryTimer)
    retryTimer = undefined
    // What was written to the lost socket fails; what is still queued goes out on the next connection.
    failPending('disconnected', 'the connection was lost before the ack', true)
  }

  /** The socket closed (close() detaches it first, so this never runs after the client was closed). */
  function lost(code: number, _reason: string): void {
    // A connection that never said `ready`: the network may not let this transport through; try the next one.
    if (!ready) transports.failed()
    stopConnection()
    retryOrFinish(shouldReconnect(code))
  }

  function retryOrFinish(retry: boolean): void {
    if (reconnect === undefined || !retry || attempt >= maxAttempts) {
      finish()
      return
    }
    setState('reconnecting')
    const delay = backoff(attempt++, reconnect, random)
    reconnectTimer = setTimeout(() => void open(), delay)
  }

  function finish(): void {
    clearTimeout(reconnectTimer)
    outbox.length = 0
    failPending('closed', 'the client closed', false)
    setState('closed')
  }

  function failPending(code: string, message: string, sentOnly: boolean): void {
    for (const [id, entry] of pending) {
      if (sentOnly && !entry.sent) continue
      pending.delete(id)
      clearTimeout(entry.timer)
      entry.reject(new RealtimeClientError(code, message))
    }
  }

  void open()

  return {
    get state() {
      return state
    },
    get transport() {
      return transports.current
    },
    get connectionId() {
      return connectionId
    },
    get userId() {
      return userId
    },
    subscribe(room, handler, subOptions = {}) {
      const sub = newSub(room, handler, subOptions, true)
      if (ready) sendSubscribe(sub)
      return {
        room,
        get seq() {
          return sub.seq
        },
        unsubscribe() {
          if (subs.get(room) !== sub) return
          subs.delete(room)
          if (sub.questions.size > 0) questionsChanged()
          if (ready) socket?.send(JSON.stringify({ type: ClientType.Unsubscribe, id: nextId(), room }))
        }
      }
    },
    on(type, handler) {
      const set = typeHandlers.get(type) ?? new Set()
      typeHandlers.set(type, set)
      set.add(handler as (event: any) => void)
      return () => set.delete(handler as (event: any) => void)
    },
    onRequest(type, handler) {
      requestHandlers.set(type, handler)
      return () => requestHandlers.delete(type)
    },
    send(type, data, sendOptions = {}) {
      return request({ type, data }, type, sendOptions.timeout)
    },
    publish(room, type, data, publishOptions = {}) {
      // A signal that is stale by the time the connection is back is not worth queueing.
      if (state !== 'closed' && !ready) {
        return Promise.reject(new RealtimeClientError('disconnected', 'not connected: a publish is not queued'))
      }
      return request({ type: ClientType.Publish, room, data: { type, data } }, `publish ${type}`, publishOptions.timeout).then(
        () => undefined
      )
    },
    presence(room, presenceOptions = {}) {
      return request({ type: ClientType.Presence, room }, ClientType.Presence, presenceOptions.timeout)
    },
    questions() {
      return questionList() as never
    },
    onQuestions(listener) {
      questionListeners.add(listener)
      return () => questionListeners.delete(listener)
    },
    reply(id, data, replyOptions = {}) {
      return answerQuestion(id, { data }, replyOptions.timeout)
    },
    decline(id, code, message = '', declineOptions = {}) {
      return answerQuestion(id, { error: { code, message } }, declineOptions.timeout)
    },
    async cancel(room, runId, cancelOptions = {}) {
      await request({ type: ClientType.Cancel, room, data: { runId } }, `cancel ${runId}`, cancelOptions.timeout)
    },
    onStateChange(listener) {
      stateListeners.add(listener)
      return () => stateListeners.delete(listener)
    },
    close() {
      if (state === 'closed') return
      const ws = socket
      // Pending acks fail as `closed` (not `disconnected`), so they go before the socket is let go.
      failPending('closed', 'the client closed', false)
      stopConnection()
      finish()
      ws?.close(1000, 'client closed')
    }
  }
}
