import type { TSchema } from '@sinclair/typebox'
import { Type } from '@sinclair/typebox'
import { type TypeCheck, TypeCompiler } from '@sinclair/typebox/compiler'
import { ClientType } from './constants.js'

/**
 * TypeBox schemas of what a client may send, compiled once when this module loads.
 * The envelope is checked first; then the `data` of a control type, or of a type registered with `handle()`.
 */

const Id = Type.String({ minLength: 1, maxLength: 128 })

/** Every client frame: one JSON object with these fields and no others. */
export const ClientEnvelope = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 128 }),
    id: Type.Optional(Id),
    room: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })),
    data: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.Unknown())
  },
  { additionalProperties: false }
)

/** `subscribe {room, data?: {since?, epoch?}}`: `since` and `epoch` ask for a resume. */
export const SubscribeData = Type.Object(
  {
    since: Type.Optional(Type.Integer({ minimum: 0 })),
    epoch: Type.Optional(Type.String({ minLength: 1, maxLength: 64 }))
  },
  { additionalProperties: false }
)

/** `auth {data: {token}}`: a fresh token for a connection whose token is about to expire. */
export const AuthData = Type.Object({ token: Type.String({ minLength: 1, maxLength: 8192 }) }, { additionalProperties: false })

/** `reply {id, data}` or `reply {id, error: {code, message}}`: the answer to a server request. */
export const ReplyError = Type.Object(
  { code: Type.String({ minLength: 1, maxLength: 128 }), message: Type.String({ maxLength: 1024 }) },
  { additionalProperties: false }
)

export interface Checker<T = unknown> {
  check(value: unknown): value is T
  /** The first error as `path: message`, e.g. `/data/since: Expected integer`. */
  explain(value: unknown): string
}

export function compile<S extends TSchema>(schema: S): Checker {
  const compiled: TypeCheck<S> = TypeCompiler.Compile(schema)
  return {
    check: (value: unknown): value is unknown => compiled.Check(value),
    explain(value) {
      const first = compiled.Errors(value).First()
      /* c8 ignore next -- explain() is only called after check() failed, so an error exists */
      if (first === undefined) return 'invalid value'
      return `${first.path || '/'}: ${first.message}`
    }
  }
}

export const checkEnvelope = compile(ClientEnvelope)
export const checkSubscribeData = compile(SubscribeData)
export const checkAuthData = compile(AuthData)
export const checkReplyError = compile(ReplyError)

/** Control types that must name a room. */
export const ROOM_TYPES: ReadonlySet<string> = new Set([ClientType.Subscribe, ClientType.Unsubscribe, ClientType.Presence])
