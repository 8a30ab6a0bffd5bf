import { type Static, type TSchema, Type } from '@sinclair/typebox'
import { TypeCompiler, type ValueError } from '@sinclair/typebox/compiler'
import { JsonPatchOperation } from '../protocol/schemas.js'
import { ApiError, ApiErrorCode } from './errors.js'

/*
 * The server API's request and response bodies. The routes validate with them and the OpenAPI document is built from
 * them, so the document cannot drift from what the routes accept.
 */

const strict = { additionalProperties: false }
const Room = Type.String({ minLength: 1, maxLength: 1024, description: 'A room name (see `limits.roomPattern`)' })
const EventType = Type.String({ minLength: 1, maxLength: 128, description: 'An event type of the registry' })
const RunId = Type.String({ minLength: 1, maxLength: 256 })
const Data = Type.Unknown({ description: "The event's data, validated against its schema in the registry" })

export const PublishBody = Type.Object(
  {
    room: Room,
    type: EventType,
    data: Data,
    volatile: Type.Optional(Type.Boolean({ description: 'No seq and no history: for progress ticks a late joiner need not see' })),
    immediate: Type.Optional(Type.Boolean({ description: 'Written at once, ahead of write coalescing' }))
  },
  { ...strict, $id: 'PublishBody' }
)
export type PublishBody = Static<typeof PublishBody>

export const Position = Type.Object(
  { room: Room, seq: Type.Integer({ minimum: 0 }), epoch: Type.String() },
  { ...strict, $id: 'Position', description: "The event's place in its room (a volatile event: the room's current one)" }
)

export const BatchBody = Type.Object(
  { events: Type.Array(PublishBody, { minItems: 1, maxItems: 1000 }) },
  { ...strict, $id: 'BatchBody', description: 'Published one after another, in order; none if any is invalid' }
)
export const BatchResult = Type.Object({ results: Type.Array(Position) }, { ...strict, $id: 'BatchResult' })

export const StreamBody = Type.Object(
  {
    room: Room,
    type: EventType,
    data: Data,
    field: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'The field of `data` that grows. Default `content`' })),
    window: Type.Optional(
      Type.Integer({ minimum: 0, maximum: 60_000, description: 'Milliseconds appends are coalesced over. Default 30' })
    ),
    runId: Type.Optional(RunId)
  },
  { ...strict, $id: 'StreamBody', description: 'Opens a token stream; with `runId`, the stream is a run clients may cancel' }
)
export type StreamBody = Static<typeof StreamBody>
export const StreamOpened = Type.Object({ id: Type.String(), room: Room }, { ...strict, $id: 'StreamOpened' })

export const AppendBody = Type.Object({ text: Type.String({ maxLength: 1024 * 1024 }) }, { ...strict, $id: 'AppendBody' })
const Cancelled = {
  cancelled: Type.Boolean({ description: "Whether the stream's run was cancelled: stop producing, then end the stream" }),
  reason: Type.Optional(Type.String())
}
export const Appended = Type.Object({ id: Type.String(), length: Type.Integer(), ...Cancelled }, { ...strict, $id: 'Appended' })
export const Ended = Type.Object(
  { id: Type.String(), room: Room, seq: Type.Integer(), epoch: Type.String(), ...Cancelled },
  { ...strict, $id: 'Ended' }
)

export const QuestionBody = Type.Object(
  {
    room: Type.Optional(Room),
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'Asks in the room `user:<user>`' })),
    type: EventType,
    data: Data,
    timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1, description: 'Milliseconds to wait for an answer' }))
  },
  { ...strict, $id: 'QuestionBody', description: 'A durable question; give `room` or `user`' }
)
export type QuestionBody = Static<typeof QuestionBody>
export const QuestionPosed = Type.Object({ id: Type.String(), room: Room }, { ...strict, $id: 'QuestionPosed' })
export const QuestionState = Type.Object(
  {
    id: Type.String(),
    status: Type.Union([Type.Literal('pending'), Type.Literal('answered'), Type.Literal('declined'), Type.Literal('timeout')]),
    answer: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.Object({ code: Type.String(), message: Type.String() }))
  },
  { ...strict, $id: 'QuestionState' }
)
export type QuestionState = Static<typeof QuestionState>

export const RunBody = Type.Object({ room: Room, runId: RunId }, { ...strict, $id: 'RunBody' })
export type RunBody = Static<typeof RunBody>
export const RunState = Type.Object({ room: Room, runId: RunId, ...Cancelled }, { ...strict, $id: 'RunState' })

export const Presence = Type.Object(
  {
    room: Room,
    members: Type.Array(Type.Object({ user: Type.String(), connections: Type.Integer(), info: Type.Optional(Type.Unknown()) }))
  },
  { ...strict, $id: 'Presence' }
)

export const DisconnectBody = Type.Object(
  {
    user: Type.String({ minLength: 1, maxLength: 256 }),
    code: Type.Optional(
      Type.Integer({ minimum: 4000, maximum: 4999, description: 'Close code. Default 4503 (revoked: do not reconnect)' })
    ),
    reason: Type.Optional(Type.String({ maxLength: 120 }))
  },
  { ...strict, $id: 'DisconnectBody' }
)
export type DisconnectBody = Static<typeof DisconnectBody>
export const Disconnected = Type.Object({ user: Type.String() }, { ...strict, $id: 'Disconnected' })

export const StateBody = Type.Object(
  { room: Room, value: Type.Unknown({ description: 'The whole new value: any JSON value' }) },
  { ...strict, $id: 'StateBody', description: "Replaces a state room's value; subscribers get the JSON Patch from the one before" }
)
export const StatePatchBody = Type.Object(
  { room: Room, ops: Type.Array(JsonPatchOperation, { minItems: 1, maxItems: 10_000 }) },
  { ...strict, $id: 'StatePatchBody', description: 'RFC 6902 operations applied to the value (to `{}` while there is none), all or none' }
)
export const StateValue = Type.Object(
  {
    room: Room,
    version: Type.Integer({ minimum: 0, description: 'The version of `value`; 0 while the room has none' }),
    value: Type.Unknown({ description: 'The value; null while the room has none' })
  },
  { ...strict, $id: 'StateValue' }
)
export const StateChanged = Type.Object(
  {
    room: Room,
    version: Type.Integer({ minimum: 0, description: 'The version the value has now' }),
    ops: Type.Array(JsonPatchOperation, { description: 'The patch subscribers were sent; empty when nothing changed' })
  },
  { ...strict, $id: 'StateChanged' }
)

export const Stats = Type.Object(
  {
    connections: Type.Integer(),
    rooms: Type.Integer(),
    subscriptions: Type.Integer(),
    messagesIn: Type.Integer(),
    messagesOut: Type.Integer(),
    errors: Type.Integer(),
    dropped: Type.Integer(),
    pendingRequests: Type.Integer()
  },
  { $id: 'Stats', description: "This instance's counters" }
)

export const ErrorBody = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String(),
    error: Type.String(),
    message: Type.String(),
    pointer: Type.Optional(Type.String({ description: 'JSON pointer of the first problem in the request body' }))
  },
  { $id: 'Error' }
)

/** A compiled body schema: returns the body typed, or throws a 400 naming the first problem's JSON pointer. */
export function validator<S extends TSchema>(schema: S): (value: unknown, at?: string) => Static<S> {
  const compiled = TypeCompiler.Compile(schema)
  return (value, at = '') => {
    if (compiled.Check(value)) return value
    // Only reached after Check() failed, when TypeBox always has a first error.
    const first = compiled.Errors(value).First() as ValueError
    const pointer = `${at}${first.path}`
    throw new ApiError(400, ApiErrorCode.InvalidMessage, `${pointer || '/'}: ${first.message}`, pointer)
  }
}
