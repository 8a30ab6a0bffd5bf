import type { Static } from '@sinclair/typebox'
import type { EventRegistry } from '../events.js'
import type { PresenceChange, PresenceMember } from '../protocol/messages.js'
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
  onopen: ((ev: any) => void) | null
  onmessage: ((ev: { data: any }) => void) | null
  onclose: ((ev: { code: number; reason: string }) => void) | null
  onerror: ((ev: any) => void) | null
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

export interface ClientOptions<E extends EventRegistry = EventRegistry, M extends EventRegistry = EventRegistry> {
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
  /** The client message types the server registered with `handle()`, for the types of `send`. */
  messages?: M
  /** Reconnect policy; `false` never reconnects. `maxAttempts` defaults to forever. */
  reconnect?: (BackoffOptions & { maxAttempts?: number }) | false
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

/** An `error` reply, a timeout, or a lost connection, with a stable `code`. */
export class RealtimeClientError extends Error {
  readonly code: string
  constructor(code: string, message: string) {
    super(message)
    this.name = 'RealtimeClientError'
    this.code = code
  }
}

export interface RealtimeClient<E extends EventRegistry = EventRegistry, M extends EventRegistry = EventRegistry> {
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
  /** Sends a message registered with `handle()` and resolves with its ack. Queued while disconnected. */
  send<K extends keyof M & string, R = unknown>(type: K, data: Static<M[K]>, options?: { timeout?: number }): Promise<R>
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
  onStateChange(listener: (state: ClientState, previous: ClientState) => void): () => void
  /** Closes the connection for good: no reconnect, every pending ack rejected, no timer left. */
  close(): void
}
