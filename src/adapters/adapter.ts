/**
 * The adapter contract: what fastify-realtime needs from the layer that carries events between instances.
 *
 * One instance uses the in-memory adapter (`memoryAdapter()`, the default). Several instances behind a load
 * balancer share a Redis adapter (`fastify-realtime/redis`), so an emit on any instance reaches subscribers on
 * every instance and a client may reconnect to any instance and resume. Another broker (NATS, PostgreSQL) can be
 * added by implementing this interface; `test/adapters/contract.ts` is the suite every adapter must pass.
 *
 * What an adapter owns, and what it never does:
 * - It owns the room's **position**: the `seq` counter and the `epoch` that names one run of it, shared by every
 *   instance. It owns the room's **history** (the last events, for resume) and its **presence** entries.
 * - It never sees a socket or a connection object. The hub (`src/server/hub.ts`) holds the local subscribers and
 *   writes frames to them. The adapter reports every publication through `AdapterHandler.publication`, for events
 *   published by this instance as well as by others, so local and remote events take one path and keep one order.
 * - It never parses or rewrites an event: the hub serializes an event once, the adapter stores and carries those
 *   bytes, and every instance writes them to its sockets as they are.
 *
 * The hard rules, which the contract suite checks:
 * 1. **Stamping, storing and publishing are one atomic step per room.** `publish` assigns the next `seq` of the room,
 *    appends the event to the room's history and hands it to every subscribed instance, with no other publication
 *    of the room in between. Two instances publishing to one room at once get seq n and n + 1, never the same seq,
 *    and every instance sees them in seq order.
 * 2. **A subscribed instance sees every publication after `subscribe` resolved.** `history` read after that therefore
 *    covers everything before, and publications cover everything after: a joining client can be served the history
 *    and then the live events with no gap, dropping duplicates by seq.
 * 3. **Missed publications are announced, never silent.** When the link to the other instances breaks (Redis
 *    restarted, the subscriber connection killed), the adapter calls `AdapterHandler.resync` once it is back, and
 *    the hub re-reads the history of every room it holds. A gap the history no longer covers is told to the
 *    client as `recovered: false` when it resumes; a client is never left with a silent hole.
 * 4. **A new epoch means a new run of seq.** When a room's state is lost or expires (no publication and no
 *    subscribed instance for the room's ttl), the next publication starts at seq 1 with a new epoch. Positions of
 *    an old epoch are never resumed into the new one.
 *
 * The plugin also publishes volatile signals between instances (a run cancelled, a question settled) on one internal
 * room that every instance subscribes to at start; to the adapter it is a room like any other.
 *
 * Errors: a method that cannot reach its backend rejects (the hub turns that into a clear error for the caller of
 * `emit()`, or an `internal` error reply for a client's subscribe). It never throws synchronously, and it never
 * calls `AdapterHandler` from inside a failed call.
 */

/** A position in a room's stream of events. */
export interface StreamPosition {
  /** The seq of the room's last event (0 before the first one). */
  readonly seq: number
  /** Names one run of the room's seq counter; changes when the room's state was lost or expired. */
  readonly epoch: string
}

/** How much history a room keeps, resolved from the plugin's `history` option for that room. */
export interface HistoryPolicy {
  /** Events kept; 0 keeps none (resume then works only for a client that missed nothing). */
  readonly size: number
  /** Milliseconds an event is kept, and a room without subscribers outlives its last event. */
  readonly ttl: number
}

/** One event as the adapter carries it. */
export interface Publication {
  readonly room: string
  /** The event's seq in `epoch`; 0 for a volatile event, which has no place in the history. */
  readonly seq: number
  /** The room's epoch when the event was published ('' for a volatile event). */
  readonly epoch: string
  /** The serialized envelope, byte for byte what a client receives. */
  readonly frame: Buffer
  /** Written to sockets at once rather than coalesced with the events around it (`emit(..., { immediate })`). */
  readonly immediate?: boolean
}

/**
 * An event to publish. The hub serializes it once, in two parts that the adapter joins around the seq it assigns
 * (`head + seq + tail`), so the adapter never parses JSON. A volatile event is already whole in `frame`.
 */
export type Outgoing =
  | { readonly volatile: false; readonly head: string; readonly tail: string; readonly immediate?: boolean }
  | { readonly volatile: true; readonly frame: string; readonly immediate?: boolean }

/** The answer to `history()`. */
export interface HistoryResult {
  /** The room's position when the history was read. */
  readonly position: StreamPosition
  /**
   * The events after `since`, in seq order, when `since` and `epoch` were given, the epoch is the room's and the
   * history still holds every event after `since`. Otherwise undefined: the client must be told `recovered: false`.
   */
  readonly events: readonly Publication[] | undefined
}

/** One connection present in a room. */
export interface PresenceEntry {
  readonly connectionId: string
  readonly userId: string
  /** Application data shown to the room's members (from the plugin's `presence.info`); JSON-serializable. */
  readonly info?: unknown
}

// Presence members and changes are protocol types: the client reads them too.
import type { PresenceChange, PresenceMember } from '../protocol/messages.js'

export type { PresenceChange, PresenceMember }

/** Changes to a room's shared state: a string sets the field, `null` deletes it. */
export type StateChanges = Readonly<Record<string, string | null>>

/**
 * The value of a state room (`app.realtime.state()`), as the adapter keeps it. The plugin serializes and parses the
 * value; the adapter stores the string as it is.
 */
export interface StateDocument {
  /** Names one run of `version`: a new one is chosen when a room with no document (or an expired one) gets one. */
  readonly epoch: string
  /** The number of changes the document has had in `epoch`: 1 for its first value. */
  readonly version: number
  /** The value, serialized JSON. */
  readonly value: string
}

/** One change of a state room's document, and the `state_patch` event that tells it. */
export interface DocumentCommit {
  /** The document the change was computed against: its epoch and version, or undefined when the room had none. */
  readonly base: { readonly epoch: string; readonly version: number } | undefined
  /** The document after the change: the base's epoch and version + 1 (or a new epoch and version 1). */
  readonly next: StateDocument
  /** The event that carries the change, stamped, stored and delivered as `publish` does with a non-volatile event. */
  readonly event: Extract<Outgoing, { readonly volatile: false }>
  /** Milliseconds the document is kept after this change. */
  readonly ttl: number
}

/** Where an adapter logs what it cannot report otherwise (a lost connection, a failed background call): the app's logger. */
export interface AdapterLog {
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
}

/** How an adapter reports to the hub. Called synchronously by the adapter; the hub never throws from these. */
export interface AdapterHandler {
  /** An event was published to a room this instance subscribes to (by this instance or another), in seq order. */
  publication(pub: Publication): void
  /**
   * The adapter's link to the other instances was broken and is back: publications in between may have been missed.
   * The hub re-reads the history of every room it holds and closes the subscribers it cannot make whole.
   */
  resync(): void
}

export interface Adapter {
  /** A short name for logs and errors, e.g. `memory` or `redis`. */
  readonly name: string

  /**
   * Called once, when the plugin registers, before any other method. Resolves when the adapter is ready to publish;
   * rejects (and registration fails) when its backend cannot be reached.
   */
  init(handler: AdapterHandler, log: AdapterLog): Promise<void>

  /**
   * Assigns the room's next seq (unless volatile), appends the event to the history (bounded by `policy`), and
   * delivers it to every instance subscribed to the room, including this one, through `AdapterHandler.publication`.
   * Atomic per room (rule 1). Resolves with the event's position; for a volatile event, the room's current one.
   * The returned promise may resolve before or after this instance's own `publication` call.
   */
  publish(room: string, event: Outgoing, policy: HistoryPolicy): Promise<StreamPosition>

  /**
   * Starts delivering the room's publications to this instance. Resolves once every later publication will arrive
   * (rule 2). The hub calls it once per room, when the room's first local subscriber joins; `policy` tells the
   * adapter how long the room must be kept alive while this instance holds it.
   */
  subscribe(room: string, policy: HistoryPolicy): Promise<void>

  /** Stops delivering the room to this instance. The hub calls it when the room's last local subscriber left. */
  unsubscribe(room: string): Promise<void>

  /**
   * Reads the room's position and, with `since` and `epoch`, the events after `since` (see `HistoryResult`).
   * A room with no state yet gets its epoch here, so the position read is the one its first event continues.
   */
  history(room: string, from: { since?: number; epoch?: string }, policy: HistoryPolicy): Promise<HistoryResult>

  /**
   * Adds a connection to the room's presence, kept `ttl` ms unless refreshed. Resolves with the `join` change
   * when it is the user's first connection in the room (on any instance), else undefined.
   */
  presenceAdd(room: string, entry: PresenceEntry, ttl: number): Promise<PresenceChange | undefined>

  /** Removes a connection from the room's presence. Resolves with the `leave` change when it was the user's last. */
  presenceRemove(room: string, connectionId: string): Promise<PresenceChange | undefined>

  /**
   * Refreshes the ttl of this instance's entries in the room, and removes the entries of others that expired
   * (a crashed instance's connections). Resolves with the `leave` changes of users who have no connection left.
   * The hub calls it on every heartbeat, for every presence room it holds; a removal is reported once, to one caller.
   */
  presenceRefresh(room: string, connectionIds: readonly string[], ttl: number): Promise<PresenceChange[]>

  /** The users present in the room, each once, with their connection counts (expired entries left out). */
  presenceList(room: string): Promise<PresenceMember[]>

  /*
   * A room's shared state: a small map of string fields that every instance reads and writes, for the open token
   * streams and pending questions of the room (`stream()`, `ask()`). The plugin owns the field names and values; the
   * adapter stores them as they are. A room's state is kept at least `ttl` ms after a write (each write extends it,
   * never shortens it), then may go as a whole. It is separate from the history: a new epoch does not clear it.
   */

  /** Every field of the room's state ({} when it has none). */
  stateRead(room: string): Promise<Record<string, string>>

  /** Applies the changes, together. */
  stateWrite(room: string, changes: StateChanges, ttl: number): Promise<void>

  /**
   * Sets `field` to `value` unless it holds a value already, atomically. Resolves with the value it holds afterwards:
   * `value`, or the one that was there (so of two instances claiming one field, both learn the winner's value).
   */
  stateClaim(room: string, field: string, value: string, ttl: number): Promise<string>

  /**
   * If `field` holds a value: deletes it, applies `changes`, and resolves true, all in one atomic step; else resolves
   * false and changes nothing. Of several callers taking one field at once, exactly one gets true.
   */
  stateTake(room: string, field: string, changes: StateChanges, ttl: number): Promise<boolean>

  /*
   * A state room's document: one JSON value and its version, shared by every instance (`app.realtime.state()`). Every
   * change is a compare-and-set of the whole document together with the publication of its patch, so the patches a
   * client receives come in version order and two instances changing one room at once never lose an update: the
   * second commit fails, and its caller reads the document again and computes its change against the first one.
   * The document is separate from the room's history and its shared state: a new epoch of the room keeps it, and it
   * goes `ttl` ms after its last change. Both methods are optional, together: without them `app.realtime.state()`
   * refuses to open a state room, and every other feature works as before.
   */

  /** The room's document, or undefined when it has none (never set, or expired). */
  documentRead?(room: string): Promise<StateDocument | undefined>

  /**
   * If the room's document is still `commit.base` (the same epoch and version; none at all when `base` is undefined):
   * stores `commit.next`, keeps it `commit.ttl` ms, and publishes `commit.event` exactly as `publish` would (rule 1),
   * all in one atomic step, and resolves with the event's position. Otherwise changes nothing, publishes nothing and
   * resolves undefined: the document moved on since it was read. Of several commits on one base, exactly one succeeds.
   */
  documentCommit?(room: string, commit: DocumentCommit, policy: HistoryPolicy): Promise<StreamPosition | undefined>

  /**
   * Stops delivering publications and releases what the adapter created (connections, timers). A client the
   * application passed in is left open: it belongs to the application.
   */
  close?(): Promise<void>
}
