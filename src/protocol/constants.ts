/**
 * Protocol `realtime.v1`: names and numbers shared by the server and the client.
 * This module does no I/O and imports nothing, so a browser bundle can take it whole.
 */

/** The WebSocket subprotocol a client offers and the server selects. */
export const SUBPROTOCOL = 'realtime.v1'

/**
 * Prefix of the subprotocol that carries a token from a browser, which cannot set headers:
 * the client offers `['realtime.v1', 'bearer.<jwt>']`, the server selects `realtime.v1` only.
 */
export const BEARER_PREFIX = 'bearer.'

/** Message types a client may send (besides the types an application registers with `handle()`). */
export const ClientType = {
  Subscribe: 'subscribe',
  Unsubscribe: 'unsubscribe',
  Ping: 'ping',
  Auth: 'auth',
  Reply: 'reply',
  Presence: 'presence',
  /** An ephemeral signal (typing, a cursor) to a room's members: volatile, allowed by `authorize` with `action: 'publish'`. */
  Publish: 'publish',
  /** Cancel a run of a room: `{ room, data: { runId } }`. */
  Cancel: 'cancel'
} as const

/** Message types only the server sends. */
export const ServerType = {
  Ready: 'ready',
  Subscribed: 'subscribed',
  Unsubscribed: 'unsubscribed',
  Pong: 'pong',
  Ack: 'ack',
  Error: 'error',
  Join: 'join',
  Leave: 'leave',
  /** The answer to a client's `presence`: the room's members. (The same name as the client's request.) */
  Presence: 'presence',
  /** A token stream opened in a room (`stream()`): its id, event type, text field and text so far. Volatile. */
  Stream: 'stream',
  /** Text appended to an open token stream, at an offset. Volatile. */
  Delta: 'delta',
  /** A question (`ask()`) of the room is settled: answered, declined or timed out. Kept in the history. */
  HitlResolved: 'hitl_resolved'
} as const

/** Every control type. An event registry may not use these names. */
// Pure calls only (no spread), so a bundle that does not use it drops it and the two objects with it.
export const RESERVED_TYPES: readonly string[] = /* @__PURE__ */ Object.freeze(
  /* @__PURE__ */ (Object.values(ClientType) as string[]).concat(/* @__PURE__ */ Object.values(ServerType))
)

/**
 * `data.code` of an `error` message. The connection stays open after each of these.
 * Handlers may also throw a `RealtimeError` with a code of their own.
 */
export const ErrorCode = {
  /** The frame is not valid JSON, or is a binary frame. */
  InvalidJson: 'invalid_json',
  /** The envelope or its `data` does not match the schema of its type. */
  InvalidMessage: 'invalid_message',
  /** No control type and no `handle()` registration has that name. */
  UnknownType: 'unknown_type',
  /** The room name is too long or does not match the allowed pattern. */
  InvalidRoom: 'invalid_room',
  /** `authorize` denied the subscription (nothing of the room is delivered) or the publish. */
  Forbidden: 'forbidden',
  /** Rooms held plus subscribes still waiting reach `limits.roomsPerConnection`. */
  TooManyRooms: 'too_many_rooms',
  /** The connection sends faster than `limits.messagesPerSecond` allows; the message was dropped. */
  RateLimited: 'rate_limited',
  /** An `auth` message carried a token that failed verification, or for another user. */
  Unauthorized: 'unauthorized',
  /** A `reply` names no request that is pending for this connection. */
  UnknownRequest: 'unknown_request',
  /** A `reply` to a question (`ask()`) that was already answered, declined or timed out. */
  AlreadyAnswered: 'already_answered',
  /** A handler failed. The details are logged on the server, never sent. */
  Internal: 'internal'
} as const
export type ErrorCodeName = (typeof ErrorCode)[keyof typeof ErrorCode]

/**
 * Close codes. The private range follows one rule the client reads:
 * 4000–4499 means "reconnect and resume", 4500–4999 means "stop".
 */
export const CloseCode = {
  /** The connection ended normally (the client or the application closed it). */
  Normal: 1000,
  /** The server is shutting down or restarting: reconnect (to another instance). */
  GoingAway: 1001,
  /** Too many invalid messages in a row: a client bug, reconnecting would repeat it. */
  PolicyViolation: 1008,
  /** A frame larger than `limits.maxPayload`. */
  MessageTooBig: 1009,
  /** An unexpected server failure. */
  InternalError: 1011,
  /** The token expired and no fresh one arrived through `auth`: reconnect with a new token. */
  TokenExpired: 4001,
  /** The connection did not read fast enough (`limits.bufferedBytes`): reconnect and resume. */
  SlowConsumer: 4008,
  /**
   * This instance missed events of a room the connection holds (its link to the other instances broke) and the
   * history no longer covers them: reconnect and resume, which answers `recovered: false` for that room.
   */
  Resync: 4010,
  /** Sustained flooding past the rate limit: reconnect after a back-off. */
  RateLimited: 4029,
  /** For the application: `connection.close(4503)` revokes a connection (e.g. the user was banned). Do not reconnect. */
  Revoked: 4503
} as const
export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode]

/**
 * Whether a client should reconnect after the server closed with `code`.
 * 1006 (abnormal: no close frame, e.g. the network dropped or a heartbeat reaped the socket)
 * and 1011/1012/1013 are transient; 1000, 1008 and 1009 are final; the private range splits at 4500.
 */
export function shouldReconnect(code: number): boolean {
  if (code >= 4000 && code <= 4999) return code < 4500
  return code === 1001 || code === 1005 || code === 1006 || code === 1011 || code === 1012 || code === 1013
}
