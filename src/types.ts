import type { JwtDecorator } from '@fastify/jwt'
import type { Static, TSchema } from '@sinclair/typebox'
import type { FastifyBaseLogger } from 'fastify'
import type { AguiApi } from './ag-ui/route.js'
import type { AgentEvents, EventRegistry, MessageSpec } from './events.js'
import type { JsonPatchOperation, PresenceMember } from './protocol/messages.js'

/** Where the plugin leaves its endpoint's path on `app.realtime`, for `fastify-realtime/testing`. Not public API. */
export const kPath: unique symbol = Symbol.for('fastify-realtime.path') as never

/** An AsyncAPI 3.0 document (https://www.asyncapi.com/docs/reference/specification/v3.0.0), as plain JSON. */
export interface AsyncApiDocument {
  asyncapi: '3.0.0'
  info: { title: string; version: string; description?: string }
  defaultContentType: 'application/json'
  channels: Record<string, unknown>
  operations: Record<string, unknown>
  components: { messages: Record<string, unknown>; securitySchemes: Record<string, unknown> }
}

/** The handle `app.realtime.stream()` returns. */
export interface StreamHandle {
  /** The stream's id: the `stream` field of the event that ends it. */
  readonly id: string
  /** The text so far, appended or not yet sent. */
  readonly text: string
  /** Appends text. Deltas are sent at most once per window, so many small appends cost a few frames. */
  append(text: string): void
  /**
   * Ends the stream: emits the whole event once, with the text in its field (kept in the history like any event),
   * and closes the stream for late joiners. Resolves with the event's position.
   */
  end(): Promise<EmitResult>
}

export interface StateOptions<S extends TSchema = TSchema> {
  /** A TypeBox schema the whole value must match after every change; a change that breaks it is refused. */
  schema?: S
  /** Milliseconds the state is kept after its last change. Default: the room's history ttl. */
  ttl?: number
}

/** What `set()` and `patch()` resolve with. */
export interface StateChange {
  /** The version the value has now. */
  readonly version: number
  /** The JSON Patch the room's subscribers were sent (empty when the value did not change). */
  readonly ops: readonly JsonPatchOperation[]
  /** The `state_patch` event's position in the room; undefined when nothing changed, so nothing was sent. */
  readonly event: EmitResult | undefined
}

/** The handle `app.realtime.state()` returns. */
export interface StateHandle<T = unknown> {
  readonly room: string
  /** The version this handle last read or made (0 before that, or while the room has no state). */
  readonly version: number
  /** The room's value as every instance shares it; undefined while the room has none. */
  get(): Promise<T | undefined>
  /** Replaces the value; subscribers get the JSON Patch from the previous one. */
  set(value: T): Promise<StateChange>
  /** Applies RFC 6902 operations to the value (to `{}` while the room has none); subscribers get them as they are. */
  patch(ops: readonly JsonPatchOperation[]): Promise<StateChange>
}

/** The verified JWT payload of a connection. `sub` is the user id. */
export interface RealtimeUser {
  sub: string
  [claim: string]: unknown
}

/** One client connection, as handlers, `authorize` and hooks see it. */
export interface RealtimeConnection {
  readonly id: string
  readonly userId: string
  readonly user: RealtimeUser
  /** Rooms this connection receives events of. */
  readonly rooms: ReadonlySet<string>
  /** A child of the request logger, bound to `connectionId` and `userId`. */
  readonly log: FastifyBaseLogger
  /** Closes the connection with a close code (default 1000) and a short reason. */
  close(code?: number, reason?: string): void
}

/**
 * Connects the application's registry to `app.realtime`, by declaration merging:
 *
 * ```ts
 * declare module 'fastify-realtime' {
 *   interface RealtimeRegistry { events: typeof events }
 * }
 * ```
 * Without it, `app.realtime` is typed by the `agentEvents` preset.
 */
// biome-ignore lint/suspicious/noEmptyInterface: filled in by the application through declaration merging
export interface RealtimeRegistry {}

export type RegisteredEvents = RealtimeRegistry extends { events: infer E extends EventRegistry } ? E : AgentEvents

export interface EmitOptions {
  /** Skip history and seq: for typing indicators and progress ticks a late subscriber need not see. */
  volatile?: boolean
  /** Write at once, ahead of write coalescing: for events a person waits on (errors, questions). */
  immediate?: boolean
}

export interface EmitResult {
  readonly room: string
  /** The event's seq; for a volatile emit, the room's current seq. */
  readonly seq: number
  readonly epoch: string
}

export interface HandlerContext<D> {
  readonly data: D
  /** The message's correlation id; the handler's return value is sent as `ack` with it. */
  readonly id: string | undefined
  readonly connection: RealtimeConnection
  readonly user: RealtimeUser
  readonly log: FastifyBaseLogger
}

export type Handler<D, R> = (ctx: HandlerContext<D>) => R | Promise<R>

/** A connection id, or every connection of one user. */
export type JoinTarget = string | { readonly user: string }

/** Where `emit()` sends: a room, several rooms, or a user (the room `user:<id>`). */
export type EmitTarget = string | readonly string[] | { readonly user: string }

export interface JoinOptions {
  /** Remember the join for the user, so their later connections start in the room. Default `true`. */
  remember?: boolean
}

export interface RequestOptions {
  /** Milliseconds to wait for the reply; default `requestTimeout` (30 000). */
  timeout?: number
}

export interface AskOptions {
  /**
   * Milliseconds the question may wait for an answer; default `requestTimeout`. Then it is settled as timed out: the
   * promise rejects and the room is told. `Infinity` waits for ever.
   */
  timeout?: number
  /** Asking again with the same key gives the same question: still pending, it is waited for; answered, its answer. */
  idempotencyKey?: string
}

export interface StreamOptions {
  /** The field of the event's `data` that holds the growing text. Default `content` (as in `agent:thought`). */
  field?: string
  /** Milliseconds over which appends are coalesced into one delta. Default 30. */
  window?: number
}

/** A run that can be cancelled: its room (what `authorize` decides on) and its id. */
export interface RunTarget {
  readonly room: string
  readonly runId: string
}

export interface RealtimeStats {
  readonly connections: number
  /** Rooms with at least one subscriber on this instance. */
  readonly rooms: number
  readonly subscriptions: number
  readonly messagesIn: number
  readonly messagesOut: number
  /** `error` replies sent. */
  readonly errors: number
  /** Volatile events not written to a connection that was behind by more than `limits.volatileBytes`. */
  readonly dropped: number
  /** `request()` calls waiting for a reply. */
  readonly pendingRequests: number
  /** Open connections by transport (always there in `app.realtime.stats()`). */
  readonly transports?: TransportCounts
}

/** Open connections of an instance, by the transport they came through. */
export interface TransportCounts {
  readonly websocket: number
  readonly sse: number
}

/** `app.realtime`. */
export interface RealtimeApi<E extends EventRegistry = RegisteredEvents> {
  /**
   * Sends a registry event to every subscriber of `room`, stamped with the room's next `seq` and `ts`,
   * serialized once. A wrong `type` or `data` does not compile; at run time (with `validate`) it throws
   * `FST_REALTIME_INVALID_EVENT` before anything is sent. `{ user: id }` sends it to the room `user:<id>`, which holds
   * the user's connections on every instance when `subscriptions` lists it (or they subscribed to it).
   */
  emit<K extends keyof E & string>(
    room: string | { readonly user: string },
    event: { type: K; data: Static<E[K]> },
    options?: EmitOptions
  ): Promise<EmitResult>
  /** Sends the event to each room of the list (each with its own seq); every room is checked before any is sent. */
  emit<K extends keyof E & string>(
    rooms: readonly string[],
    event: { type: K; data: Static<E[K]> },
    options?: EmitOptions
  ): Promise<EmitResult[]>
  /**
   * Opens a token stream in `room`: `append(text)` sends deltas (coalesced per `window`, 30 ms), `end()` emits the
   * finished event once, with the whole text in `data[field]`. A client that subscribes mid-stream gets the text so
   * far in `subscribed`, then the deltas. The event's other fields are checked against the registry at once.
   */
  stream<K extends keyof E & string>(room: string, event: { type: K; data: Static<E[K]> }, options?: StreamOptions): StreamHandle
  /**
   * A state room: one JSON value shared by every instance, with `get()`, `set(value)`, `patch(ops)` and `version`.
   * Subscribers get the value in `subscribed` (`data.state`), then each change as a JSON Patch (`state_patch`). With
   * `schema`, the whole value is checked after each change and a change that breaks it is refused (typed by it, too).
   */
  state<S extends TSchema>(room: string, options: StateOptions<S> & { schema: S }): StateHandle<Static<S>>
  state<T = unknown>(room: string, options?: StateOptions): StateHandle<T>
  /**
   * Registers a client→server message type. The handler's return value is the `ack`. Given a `defineMessages`
   * entry (`handle('run:start', messages['run:start'], handler)`), the handler must return its `ack` type.
   */
  handle<S extends TSchema, R>(type: string, schema: S, handler: Handler<Static<S>, R>): void
  handle<D extends TSchema, A extends TSchema>(type: string, spec: MessageSpec<D, A>, handler: Handler<Static<D>, Static<A>>): void
  /**
   * Sends a server request to one connection (by id) or to every subscriber of a room; resolves with the
   * first `reply`'s data. Rejects on timeout, when every asked connection closes, or on a client error reply.
   */
  request<R = unknown, K extends keyof E & string = keyof E & string>(
    target: string,
    event: { type: K; data: Static<E[K]> },
    options?: RequestOptions
  ): Promise<R>
  /**
   * Asks a durable question (human in the loop): an event of the room's history (for `{ user }`, the room
   * `user:<user>`) with an `id`, shown to every connection holding the room, after reconnects too, on every instance.
   * Resolves with the first `reply`'s data; later replies get `already_answered`, and the room is told `hitl_resolved`.
   * Rejects on timeout (the room is told too) or on a declining reply.
   */
  ask<R = unknown, K extends keyof E & string = keyof E & string>(
    target: string | { readonly user: string },
    event: { type: K; data: Static<E[K]> },
    options?: AskOptions
  ): Promise<R>
  /**
   * Subscribes connections to a room from the server (no `authorize`): one connection by id (of this instance), or
   * `{ user }`, every connection of the user on every instance. The join is remembered for the user (in the adapter,
   * so on every instance): their later connections start in the room, before `ready`, until `leave()`. `{ remember:
   * false }` joins only the connections there are now. Resolves with how many joined on this instance, once their
   * `subscribed` is sent.
   */
  join(target: JoinTarget, room: string, options?: JoinOptions): Promise<number>
  /**
   * Unsubscribes connections from a room (`{ user }`: on every instance) and forgets the remembered join. Resolves with
   * how many left on this instance. A room `subscriptions` gives comes back at the user's next connect.
   */
  leave(target: JoinTarget, room: string): Promise<number>
  /**
   * Runs `fn` with an `AbortSignal` that a `cancel` of `runId` in `room` aborts, from a client (allowed by `authorize`
   * with `action: 'cancel'`) or from `cancel()`, on any instance. Resolves or rejects as `fn` does; the run can be
   * cancelled until then. `signal.reason` is a `FST_REALTIME_RUN_CANCELLED` error naming who cancelled.
   */
  run<T>(target: RunTarget, fn: (signal: AbortSignal) => T | Promise<T>): Promise<T>
  /** Cancels a run from the server (e.g. an HTTP route), on every instance. */
  cancel(target: RunTarget): Promise<void>
  /** The users present in a room (with `presence` on for it), across every instance. */
  presence(room: string): Promise<PresenceMember[]>
  /** The connection with this id on this instance, if any. */
  connection(id: string): RealtimeConnection | undefined
  stats(): RealtimeStats & { readonly transports: TransportCounts }
  /**
   * The endpoint as an AsyncAPI 3.0 document: every control message, registry event and `handle()` type, with their
   * schemas. With the `asyncapi` option it is also served at `GET <path>/asyncapi.json`.
   */
  asyncapi(): AsyncApiDocument
  /** Closes every connection with 1001 and stops every timer; `app.close()` calls it. */
  close(): Promise<void>
  /** AG-UI endpoints: `agui.route(url, handler)` (see `fastify-realtime/ag-ui`). */
  readonly agui: AguiApi
}

declare module 'fastify' {
  interface FastifyInstance {
    realtime: RealtimeApi
    /**
     * @fastify/jwt's decorator, which the plugin registers unless the app did. Declared here as well, so that its
     * types come with ours (as @fastify/jwt declares it) in an app that never imports @fastify/jwt itself.
     */
    jwt: JwtDecorator
  }
}
