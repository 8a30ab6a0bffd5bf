import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'

/** Codes of the server API's error answers (`{ statusCode, code, error, message, pointer? }`). */
export const ApiErrorCode = {
  /** The body is not JSON, or not of the route's shape, or an event's data does not match its schema (see `pointer`). */
  InvalidMessage: 'invalid_message',
  /** The event type is not in the registry. */
  UnknownType: 'unknown_type',
  /** The room name is too long or does not match `limits.roomPattern`. */
  InvalidRoom: 'invalid_room',
  /** No credential, or not a server credential (a user token is one of those). */
  Unauthorized: 'unauthorized',
  /** The body is larger than `serverApi.bodyLimit`. */
  PayloadTooLarge: 'payload_too_large',
  /** The credential sends faster than `serverApi.rateLimit`; `Retry-After` says when to try again. */
  RateLimited: 'rate_limited',
  /** No such stream, question or run on this instance. */
  NotFound: 'not_found',
  /** The stream has ended. */
  Ended: 'ended',
  /** A state change that does not apply to the value (a failed `test`, a missing path) or breaks its schema. */
  InvalidState: 'invalid_state',
  /** A request with this `Idempotency-Key` is still running, or the key was used for a different request. */
  IdempotencyConflict: 'idempotency_conflict',
  /** The adapter (Redis) cannot be reached; nothing was published. Retry with the same `Idempotency-Key`. */
  AdapterFailed: 'adapter_failed',
  /** An unexpected failure; the details are in the server log. */
  Internal: 'internal'
} as const

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    /** The JSON pointer of the first problem in the request body. */
    readonly pointer?: string
  ) {
    super(message)
  }
}

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable'
}

/** Fastify's own errors on the way in, as API errors. */
function fromFastify(err: FastifyError): ApiError | undefined {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, ApiErrorCode.PayloadTooLarge, err.message)
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, ApiErrorCode.InvalidMessage, 'send the body as application/json')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, ApiErrorCode.InvalidMessage, err.message, '')
    case 'FST_REALTIME_ADAPTER_FAILED':
      return new ApiError(503, ApiErrorCode.AdapterFailed, err.message)
    case 'FST_REALTIME_INVALID_STATE':
      return new ApiError(422, ApiErrorCode.InvalidState, err.message)
  }
  return undefined
}

/** The API's error handler: every error becomes one JSON shape; unexpected ones are logged and sent as `internal`. */
export function replyError(err: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const known = err instanceof ApiError ? err : fromFastify(err)
  if (known === undefined) {
    request.log.error({ err }, 'realtime server API request failed')
    return reply.code(500).send({ statusCode: 500, code: ApiErrorCode.Internal, error: TITLES[500], message: 'internal error' })
  }
  if (known.statusCode === 503) request.log.warn({ err }, 'realtime server API unavailable')
  const body: Record<string, unknown> = {
    statusCode: known.statusCode,
    code: known.code,
    error: TITLES[known.statusCode],
    message: known.message
  }
  if (known.pointer !== undefined) body.pointer = known.pointer
  const { headers } = known as { headers?: Record<string, string> }
  if (headers !== undefined) reply.headers(headers)
  return reply.code(known.statusCode).send(body)
}
