import type { Static, TSchema } from '@sinclair/typebox'
import type { EventRegistry, MessageRegistry } from '../events.js'
import type { JsonPatchOperation, PresenceChange, PresenceMember } from '../protocol/messages.js'
import type { BackoffOptions } from './backoff.js'
import type { FetchLike } from './sse-socket.js'

/**
 * The public surface of `fastify-realtime/client`: options, the client's methods and what they hand to your code.
 * `client.ts` implements it.
 */
export type ClientState = 'connecting' | 'open' | 'reconnecting' | 'closed'

export type { PresenceChange, PresenceMember }

/** The subset of the WebSocket API the client uses: the browser's, or `ws` in Node. */
export interface WebSocketLike {
  readonly readyState: number
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number; reason: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike

/**
 * One event type of a registry, as the client receives it (`seq` is absent on volatile events). An event of a token
 * stream (`app.realtime.stream()`) names it in `stream`: while it grows it comes again and again with `partial: true`
 * and the text so far in its field; the last one, without `partial`, is the finished event, with a `seq`.
 */
export interface ClientEventOf<E extends EventRegistry, K extends keyof E & string> {
  type: K
  room: string
  seq?: number
  /** The user who published it, for an event a client sent with `publish()`. */
  from?: string
  data: Static<E[K]>
  ts: string
  /** The token stream this event belongs to. */
  stream?: string
  /** True while the stream grows: the text so far, not the finished event. */
  partial?: true
}

/** A question of a room (`app.realtime.ask()`) waiting for its first answer. Answer it with `reply(id, data)`. */
export interface ClientQuestionOf<E extends EventRegistry, K extends keyof E & string> {
  readonly id: string
  readonly room: string
  readonly type: K
  readonly data: Static<E[K]>
  readonly ts: string
}

/** Any open question: a union that narrows on `type`. */
export type ClientQuestion<E extends EventRegistry> = { [K in keyof E & string]: ClientQuestionOf<E, K> }[keyof E & string]

/** Any registry event, as the client receives it: a union that narrows on `type`. */
export type ClientEvent<E extends EventRegistry> = { [K in keyof E & string]: ClientEventOf<E, K> }[keyof E & string]

/** The `data` a message of a registry carries: a bare schema, or the `data` of a `defineMessages` entry. */
export type MessageData<M extends MessageRegistry, K extends keyof M> = M[K] extends TSchema
  ? Static<M[K]>
  : M[K] extends { data: infer D extends TSchema }
    ? Static<D>
    : never

/** The ack of a message, as its `defineMessages` entry declares it; `unknown` for a bare schema. */
export type MessageAck<M extends MessageRegistry, K extends keyof M> = M[K] extends { ack: infer A extends TSchema } ? Static<A> : unknown

/**
 * Why the connection failed or ended, as `onError` reports it. `retrying` tells whether the client carries on
 * (a new attempt follows) or stopped (state `closed`).
 * - `refused`: the server refused the upgrade; `status` and `body` are its HTTP answer (401 token, 403 origin),
 *   found by a plain request to the endpoint after repeated failures. The client stops.
 * - `unreachable`: repeated attempts failed and the endpoint gave no refusal to read (down, or not reachable).
 * - `token`: the `token` function threw or rejected; `cause` holds what it threw.
 * - `auth_expired` (4001), `rate_limited` (4029), `going_away` (1001, 1012: the server shuts down or restarts),
 *   `protocol` (1002, 1007, 1008, 1009: reconnecting would repeat it),
 *   `server_error` (1011), `revoked` (4500–4999): the server closed with that `code` and `reason`. A lost
 *   connection (1006) and the closes that only ask to reconnect and resume (4008, 4010) are not failures: the state
 *   change carries their code.
 */
export interface ConnectionError {
  readonly kind:
    | 'refused'
    | 'unreachable'
    | 'token'
    | 'auth_expired'
    | 'rate_limited'
    | 'going_away'
    | 'protocol'
    | 'server_error'
    | 'revoked'
  /** The close code, for a connection the server closed. */
  readonly code?: number
  /** The close reason, or the refusal's message. */
  readonly reason: string
  /** The HTTP status of a refused upgrade. */
  readonly status?: number
  /** The HTTP body of a refused upgrade (parsed JSON: `{ statusCode, code, error, message }`). */
  readonly body?: unknown
  readonly cause?: unknown
  readonly retrying: boolean
}

/** How a connection ended, passed with a state change that a close caused. */
export interface CloseInfo {
  readonly code: number
  readonly reason: string
}

/** Where a room stands for this client: the last seq received and its epoch. Pass it back to `subscribe()` to resume. */
export interface Position {
  readonly seq: number
  readonly epoch: string
}

export interface ClientOptions<E extends EventRegistry = EventRegistry, M extends MessageRegistry = EventRegistry> {
  /** `ws://` or `wss://` URL of the endpoint. The token never goes in it. */
  url: string
  /** A token, or a function called before every (re)connect and before the token expires. */
  token?: string | (() => string | Promise<string>)
  /** The WebSocket implementation: default `globalThis.WebSocket`; in Node 20 pass `ws`. */
  WebSocket?: WebSocketConstructor
  /**
   * The transports to try, in order. Default `['websocket', 'sse']`: when a WebSocket connection fails before the
   * server's `ready` (a proxy that refuses upgrades, a timeout), the client uses Server-Sent Events, and keeps the
   * transport that worked for its reconnects. `['sse']` uses SSE only.
   */
  transports?: readonly ('websocket' | 'sse')[]
  /** The `fetch` the SSE transport uses. Default: the global one (browsers, Node 20). */
  fetch?: FetchLike
  /** The server's event registry, for types only (nothing of it is used at run time). */
  events?: E
  /** The client message types the server registered with `handle()` (`defineMessages`), for the types of `send` and its ack. */
  messages?: M
  /**
   * Reconnect policy; `false` never reconnects. `maxAttempts` defaults to forever. `spread` is the window (ms) the
   * first attempt after a lost connection is drawn from, uniformly, so that clients dropped together by a restart do
   * not come back together: default `initialDelay` when you set one, else 2 000. Later attempts back off exponentially.
   */
  reconnect?: (BackoffOptions & { maxAttempts?: number; spread?: number }) | false
  /**
   * Called for every failure of the connection, with a typed reason: a refused upgrade (HTTP status and body), an
   * expired token, a rate limit, a server going away, a protocol error. See `ConnectionError`.
   */
  onError?: (error: ConnectionError) => void
  /** Milliseconds `send()` waits for its ack. Default 10 000. */
  ackTimeout?: number
  /** Milliseconds the server may stay silent past its heartbeat interval before the socket is replaced. Default 10 000. */
  heartbeatTimeout?: number
  /** Seconds before the token's `exp` to fetch a fresh one from `token()` and send `auth`. Default 30. */
  refreshBeforeExpiry?: number
  /** Milliseconds from opening a socket to the server's `ready` before the attempt counts as failed. Default 10 000. */
  connectTimeout?: number
  /** Randomness for the backoff (tests pass a fixed one). */
  random?: () => number
  /**
   * Called when one of your handlers throws; the other handlers and the connection carry on. Default: the error is
   * rethrown on its own (an uncaught error, as from an event listener), so it is not lost.
   */
  onHandlerError?: (error: unknown) => void
}

export interface SubscribeInfo {
  /** True when the missed events were replayed; false when the page must redraw (from `snapshot`). */
  readonly recovered: boolean
  readonly seq: number
  readonly epoch: string
  readonly snapshot?: unknown
}

export interface SubscribeOptions {
  /**
   * Resume from a saved position (`client.positions()[room]`, e.g. kept in sessionStorage across a reload): the
   * server replays every event after `since` in `epoch` (`recovered: true`), or answers `recovered: false`.
   */
  since?: number
  epoch?: string
  /** Called on every `subscribed`: the first time, and after each reconnect. */
  onSubscribed?: (info: SubscribeInfo) => void
  /**
   * Called when the server refuses the subscription (e.g. `forbidden`); the subscription then ends. With
   * `onPresence`, also when the server refuses the room's member list (`forbidden`: presence is off for the room);
   * the subscription then stays.
   */
  onError?: (error: RealtimeClientError) => void
  /**
   * Follows who is in the room (one the server has `presence` on for). After every `subscribed` (the first, and
   * after each reconnect) the client asks the server for the members and calls this with them, `change` undefined;
   * then again after each `join` or `leave`, with the updated list and the change. One entry per user, in the order
   * they arrived.
   */
  onPresence?: (members: PresenceMember[], change?: PresenceChange) => void
}

export interface Subscription {
  readonly room: string
  /** The seq of the last event received in this room (0 before any). */
  readonly seq: number
  unsubscribe(): void
}

/** A state room followed with `liveState()`. */
export interface LiveState<T = unknown> {
  readonly room: string
  /** The value as it stands (a new object after each change); undefined until it arrived, or while the room has none. */
  readonly value: T | undefined
  /** The version of `value` (0 while there is none). */
  readonly version: number
  /** Stops calling the listener; the room is left when `liveState()` subscribed to it and no other listener remains. */
  unsubscribe(): void
}

/** An `error` reply, a timeout, or a lost connection, with a stable `code`. */
export class RealtimeClientError extends Error {
  // Declared, not defined: a class field would cost the browser bundle a helper.
  declare readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.name = 'RealtimeClientError'
    this.code = code
  }
}

export interface RealtimeClient<E extends EventRegistry = EventRegistry, M extends MessageRegistry = EventRegistry> {
  readonly state: ClientState
  /** The transport of the current (or last) connection. */
  readonly transport: 'websocket' | 'sse'
  /** Set once `ready` arrived; a new one after each reconnect. */
  readonly connectionId: string | undefined
  readonly userId: string | undefined
  /** Receives the room's events; resubscribes and resumes after every reconnect. */
  subscribe(room: string, handler?: (event: ClientEvent<E>) => void, options?: SubscribeOptions): Subscription
  /** Receives events of one type from every room. Returns a function that removes the handler. */
  on<K extends keyof E & string>(type: K, handler: (event: ClientEventOf<E, K>) => void): () => void
  /** Answers server requests of one type: the handler's value is the reply; a thrown error declines it. */
  onRequest<K extends keyof E & string>(type: K, handler: (data: Static<E[K]>) => unknown): () => void
  /**
   * The users present in `room`, one entry per user with their connection count. The client must hold the room
   * (ask once its `onSubscribed` was called) and the server must have `presence` on for it, else this rejects with
   * `forbidden`. Rejects like `send` on timeout, a lost connection or `close()`. To follow changes, use `onPresence`.
   */
  presence(room: string, options?: { timeout?: number }): Promise<PresenceMember[]>
  /**
   * Sends a message registered with `handle()` and resolves with its ack, typed by its `defineMessages` entry.
   * Queued while disconnected.
   */
  send<K extends keyof M & string, R = MessageAck<M, K>>(type: K, data: MessageData<M, K>, options?: { timeout?: number }): Promise<R>
  /**
   * Where each room held stands (room → seq and epoch), for rooms that got their `subscribed`. Save it (e.g. in
   * sessionStorage) and pass an entry to `subscribe(room, handler, { since, epoch })` to resume after a reload.
   */
  positions(): Record<string, Position>
  /**
   * Publishes a registry event to a room's members (a typing indicator, a cursor): volatile, never queued (it
   * rejects with `disconnected` while not connected), allowed where the server's `authorize` allows `publish`.
   * Resolves once the server took it. Members get it with `from` set to this user, the sender too if subscribed.
   */
  publish<K extends keyof E & string>(room: string, type: K, data: Static<E[K]>, options?: { timeout?: number }): Promise<void>
  /**
   * Cancels the run `runId` of `room` (the server's `app.realtime.run()`), if the server's `authorize` allows it.
   * Resolves once the server has passed the cancel on; rejects with `forbidden`, or as `send` does.
   */
  cancel(room: string, runId: string, options?: { timeout?: number }): Promise<void>
  /**
   * The questions (`app.realtime.ask()`) open in the rooms this client holds, oldest first: listed by the server on
   * every (re)subscribe, added as they are asked, removed when settled (`hitl_resolved`) by any connection.
   */
  questions(): ClientQuestion<E>[]
  /** Called with the open questions whenever they change. Returns a function that removes the listener. */
  onQuestions(listener: (questions: ClientQuestion<E>[]) => void): () => void
  /**
   * Answers an open question. Resolves when this answer won; rejects with `already_answered` when another
   * connection (maybe another tab of the same user) answered first, and the question leaves the list either way.
   */
  reply(id: string, data: unknown, options?: { timeout?: number }): Promise<void>
  /** Declines an open question: the server's `ask()` rejects with the code. */
  decline(id: string, code: string, message?: string, options?: { timeout?: number }): Promise<void>
  /** Called on every state change; a change caused by a closed connection carries its close code and reason. */
  onStateChange(listener: (state: ClientState, previous: ClientState, close?: CloseInfo) => void): () => void
  /** Adds a listener for connection failures (as the `onError` option). Returns a function that removes it. */
  onError(listener: (error: ConnectionError) => void): () => void
  /**
   * Follows a state room (the server's `app.realtime.state(room)`), subscribing to the room unless this client holds
   * it already. `onChange` gets the value whenever it changes (a new object each time, so it suits React state) and
   * the JSON Patch that made it (undefined when the value came whole, on subscribing or after a gap). A patch that
   * does not follow the version held brings a fresh value from the server by itself.
   */
  liveState<T = unknown>(
    room: string,
    onChange: (value: T | undefined, ops: readonly JsonPatchOperation[] | undefined) => void,
    options?: SubscribeOptions
  ): LiveState<T>
  /** Closes the connection for good: no reconnect, every pending ack rejected, no timer left. */
  close(): void
}
