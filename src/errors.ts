import createError from '@fastify/error'
import type { ErrorCodeName } from './protocol/constants.js'

/** An error of this package: an `Error` with a stable `code` and the HTTP `statusCode` it maps to. */
export type RealtimeFastifyError<C extends string, SC extends number> = Error & { name: string; code: C; statusCode: SC }

/** An error class of this package (as `@fastify/error` builds them): callable with or without `new`. */
export interface RealtimeErrorClass<C extends string, SC extends number> {
  new (...args: [unknown?, unknown?, unknown?]): RealtimeFastifyError<C, SC>
  (...args: [unknown?, unknown?, unknown?]): RealtimeFastifyError<C, SC>
  readonly prototype: RealtimeFastifyError<C, SC>
}

/**
 * `createError` with its result typed by our own interface: a declaration inferred from `createError` reads
 * `createError.FastifyErrorConstructor`, a namespace that resolves only where the consumer's settings allow a
 * synthetic default import; elsewhere it is TS2503, or `any` under `skipLibCheck`.
 */
function errorClass<C extends string, SC extends number = 500>(
  code: C,
  message: string,
  statusCode?: SC,
  Base?: ErrorConstructor
): RealtimeErrorClass<C, SC> {
  return createError(code, message, statusCode, Base) as RealtimeErrorClass<C, SC>
}

/** A registration option is missing or of the wrong type; the message names the option. */
export const FST_REALTIME_INVALID_OPTION = errorClass('FST_REALTIME_INVALID_OPTION', 'fastify-realtime: %s', 500, TypeError)
/** `defineEvents` was given a reserved name, an empty name or something that is not a schema. */
export const FST_REALTIME_INVALID_REGISTRY = errorClass('FST_REALTIME_INVALID_REGISTRY', 'fastify-realtime: %s', 500, TypeError)
/** `handle()` was called with a bad type, schema or handler, or twice for one type. */
export const FST_REALTIME_INVALID_HANDLER = errorClass('FST_REALTIME_INVALID_HANDLER', 'fastify-realtime: %s', 500, TypeError)
/** `emit()` was called with an unknown type, data that fails its schema, or a bad room. */
export const FST_REALTIME_INVALID_EVENT = errorClass('FST_REALTIME_INVALID_EVENT', 'fastify-realtime: %s', 500, TypeError)
/** The upgrade carried no valid token. Sent as HTTP 401 before any upgrade. */
export const FST_REALTIME_UNAUTHORIZED = errorClass('FST_REALTIME_UNAUTHORIZED', '%s', 401)
/** The `authenticate` hook threw (without a 4xx status of its own) or returned a user without `sub`. Sent as HTTP 500. */
export const FST_REALTIME_AUTHENTICATE_FAILED = errorClass('FST_REALTIME_AUTHENTICATE_FAILED', 'Authentication failed', 500)
/** The `subscriptions` option threw or returned something that is not a list of valid rooms. Sent as HTTP 500. */
export const FST_REALTIME_SUBSCRIPTIONS_FAILED = errorClass(
  'FST_REALTIME_SUBSCRIPTIONS_FAILED',
  'The rooms of the connection could not be found',
  500
)
/** A plugin fastify-realtime registered itself was registered again by the app, after it. */
export const FST_REALTIME_REGISTRATION_ORDER = errorClass('FST_REALTIME_REGISTRATION_ORDER', 'fastify-realtime: %s', 500)
/** The upgrade came from an origin that is not allowed. Sent as HTTP 403. */
export const FST_REALTIME_FORBIDDEN_ORIGIN = errorClass('FST_REALTIME_FORBIDDEN_ORIGIN', 'Origin %s is not allowed', 403)
/** The upgrade offered subprotocols but not `realtime.v1`. Sent as HTTP 400. */
export const FST_REALTIME_BAD_SUBPROTOCOL = errorClass('FST_REALTIME_BAD_SUBPROTOCOL', '%s', 400)
/** The user already holds `limits.connectionsPerUser` connections. Sent as HTTP 429 before the upgrade. */
export const FST_REALTIME_TOO_MANY_CONNECTIONS = errorClass(
  'FST_REALTIME_TOO_MANY_CONNECTIONS',
  'Too many connections for this user (at most %d)',
  429
)
/** The server holds `limits.connections` connections. Sent as HTTP 503 before the upgrade. */
export const FST_REALTIME_SERVER_FULL = errorClass('FST_REALTIME_SERVER_FULL', 'The real-time server is at its connection limit', 503)
/** The server is closing and takes no new connections. Sent as HTTP 503. */
export const FST_REALTIME_CLOSING = errorClass('FST_REALTIME_CLOSING', 'The real-time server is shutting down', 503)
/** A `POST <path>/sse/<sessionId>` names no open stream of this instance. Sent as HTTP 404. */
export const FST_REALTIME_NO_SESSION = errorClass('FST_REALTIME_NO_SESSION', 'No open stream %s on this server', 404)
/** A `POST <path>/sse/<sessionId>` by another user than the one who opened the stream. Sent as HTTP 403. */
export const FST_REALTIME_NOT_YOUR_SESSION = errorClass('FST_REALTIME_NOT_YOUR_SESSION', 'The stream belongs to another user', 403)
/** A `Last-Event-ID` (or `?lastEventId=`) the server cannot read. Sent as HTTP 400 before the stream starts. */
export const FST_REALTIME_BAD_EVENT_ID = errorClass('FST_REALTIME_BAD_EVENT_ID', 'Bad Last-Event-ID: %s', 400)
/** The instance holds as many unredeemed tickets as it may. Sent as HTTP 503. */
export const FST_REALTIME_TICKETS_FULL = errorClass('FST_REALTIME_TICKETS_FULL', 'Too many tickets waiting to be redeemed', 503)
/** `request()` found no connection to ask. */
export const FST_REALTIME_NO_TARGET = errorClass('FST_REALTIME_NO_TARGET', 'fastify-realtime: no connection for %s')
/** `request()` got no reply in time. */
export const FST_REALTIME_REQUEST_TIMEOUT = errorClass('FST_REALTIME_REQUEST_TIMEOUT', 'fastify-realtime: request %s timed out after %d ms')
/** Every connection a `request()` was sent to closed before replying. */
export const FST_REALTIME_REQUEST_DISCONNECTED = errorClass(
  'FST_REALTIME_REQUEST_DISCONNECTED',
  'fastify-realtime: request %s lost its connection before a reply'
)
/** The client answered a `request()` with an error. */
export const FST_REALTIME_REQUEST_REJECTED = errorClass(
  'FST_REALTIME_REQUEST_REJECTED',
  'fastify-realtime: request %s was rejected by the client: %s'
)

/** The reason a run's `AbortSignal` carries when the run was cancelled (`signal.reason`). */
export const FST_REALTIME_RUN_CANCELLED = errorClass('FST_REALTIME_RUN_CANCELLED', 'fastify-realtime: run %s of "%s" was cancelled by %s')

/** A state room (`app.realtime.state()`) refused a change: a bad patch, a value that is not JSON, or one its schema refuses. Nothing changed. */
export const FST_REALTIME_INVALID_STATE = errorClass('FST_REALTIME_INVALID_STATE', 'fastify-realtime: %s', 500, TypeError)

/** The adapter could not publish (e.g. Redis is unreachable); nothing was sent or stored. */
export const FST_REALTIME_ADAPTER_FAILED = errorClass('FST_REALTIME_ADAPTER_FAILED', 'fastify-realtime: the %s adapter failed: %s', 503)

/**
 * An error a `handle()` handler may throw to send its own `code` and `message` to the client.
 * Any other exception is sent as `internal`, with its details kept in the server log.
 */
export class RealtimeError extends Error {
  readonly code: ErrorCodeName | (string & {})
  constructor(code: ErrorCodeName | (string & {}), message: string) {
    super(message)
    this.name = 'RealtimeError'
    this.code = code
  }
}
