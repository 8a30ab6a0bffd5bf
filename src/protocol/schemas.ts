import type { TSchema } from '@sinclair/typebox'
import { Type } from '@sinclair/typebox'
import { type TypeCheck, TypeCompiler, type ValueError } from '@sinclair/typebox/compiler'
import { ClientType, ServerType } from './constants.js'

/**
 * Every message of `realtime.v1` as a TypeBox schema. The TypeScript types in `messages.ts` are derived from
 * these. The server compiles the client messages once, when this module loads, and checks each frame against the
 * envelope, then against its type's schema. (A browser client imports only the types, never this module.)
 */

const Id = Type.String({ minLength: 1, maxLength: 128 })
const Room = Type.String({ minLength: 1, maxLength: 1024 })
const Seq = Type.Integer({ minimum: 0 })
const strict = { additionalProperties: false } as const

// Client -> Server

/** Every client frame: one JSON object with these fields and no others. */
export const ClientEnvelope = Type.Object(
  {
    type: Type.String({ minLength: 1, maxLength: 128 }),
    id: Type.Optional(Id),
    room: Type.Optional(Room),
    data: Type.Optional(Type.Unknown()),
    error: Type.Optional(Type.Unknown())
  },
  strict
)

/** `since`/`epoch` ask for a resume from the event after `since`. */
export const SubscribeData = Type.Object(
  { since: Type.Optional(Seq), epoch: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })) },
  strict
)
export const Subscribe = Type.Object(
  { type: Type.Literal(ClientType.Subscribe), id: Type.Optional(Id), room: Room, data: Type.Optional(SubscribeData) },
  strict
)
export const Unsubscribe = Type.Object({ type: Type.Literal(ClientType.Unsubscribe), id: Type.Optional(Id), room: Room }, strict)
export const Ping = Type.Object({ type: Type.Literal(ClientType.Ping), id: Type.Optional(Id) }, strict)
/** A fresh token for a connection whose token is about to expire. */
export const Auth = Type.Object(
  {
    type: Type.Literal(ClientType.Auth),
    id: Type.Optional(Id),
    data: Type.Object({ token: Type.String({ minLength: 1, maxLength: 8192 }) }, strict)
  },
  strict
)
export const ReplyError = Type.Object(
  { code: Type.String({ minLength: 1, maxLength: 128 }), message: Type.String({ maxLength: 1024 }) },
  strict
)
/**
 * The answer to a server request: `data`, or `error` when the client declines or fails. A question (`ask()`) is
 * answered with its `room` as well.
 */
export const Reply = Type.Object(
  {
    type: Type.Literal(ClientType.Reply),
    id: Id,
    room: Type.Optional(Room),
    data: Type.Optional(Type.Unknown()),
    error: Type.Optional(ReplyError)
  },
  strict
)
export const PresenceRequest = Type.Object({ type: Type.Literal(ClientType.Presence), id: Type.Optional(Id), room: Room }, strict)
/** A registry event from a client to a room: `data.type` names it, `data.data` must match its schema. */
export const Publish = Type.Object(
  {
    type: Type.Literal(ClientType.Publish),
    id: Type.Optional(Id),
    room: Room,
    data: Type.Object({ type: Type.String({ minLength: 1, maxLength: 128 }), data: Type.Optional(Type.Unknown()) }, strict)
  },
  strict
)
/** Cancel the run `runId` of a room; allowed by `authorize` with `action: 'cancel'`, answered with `ack`. */
export const Cancel = Type.Object(
  {
    type: Type.Literal(ClientType.Cancel),
    id: Type.Optional(Id),
    room: Room,
    data: Type.Object({ runId: Type.String({ minLength: 1, maxLength: 256 }) }, strict)
  },
  strict
)
/** A message of a type the application registered with `handle()`; its `data` is checked against that schema. */
export const ApplicationMessage = Type.Object(
  { type: Type.String({ minLength: 1, maxLength: 128 }), id: Type.Optional(Id), data: Type.Optional(Type.Unknown()) },
  strict
)

// Server -> Client

export const Ready = Type.Object(
  {
    type: Type.Literal(ServerType.Ready),
    data: Type.Object(
      {
        connectionId: Type.String(),
        userId: Type.String(),
        heartbeatMs: Type.Integer({ minimum: 1 }),
        /** The largest frame the server accepts, in bytes; a larger one closes the connection with 1009. */
        maxPayload: Type.Integer({ minimum: 1 })
      },
      strict
    )
  },
  strict
)
/** A token stream as it stands: the event it builds, the field of `data` that grows, and the text so far. */
export const StreamState = Type.Object(
  {
    id: Id,
    /** The registry type of the event the stream builds. */
    type: Type.String({ minLength: 1 }),
    /** The field of `data` that holds the text. */
    field: Type.String({ minLength: 1 }),
    /** The event's data, with `field` empty: the text is in `text`. */
    data: Type.Unknown(),
    text: Type.String(),
    ts: Type.String()
  },
  strict
)
/** A question (`ask()`) waiting for its first answer. Answer it with `reply {id, room, data}`. */
export const QuestionState = Type.Object({ id: Id, type: Type.String({ minLength: 1 }), data: Type.Unknown(), ts: Type.String() }, strict)
/** One RFC 6902 operation: `op`, a JSON Pointer `path`, and `value` or `from` as the op needs. */
export const JsonPatchOperation = Type.Object(
  {
    op: Type.Union([
      Type.Literal('add'),
      Type.Literal('remove'),
      Type.Literal('replace'),
      Type.Literal('move'),
      Type.Literal('copy'),
      Type.Literal('test')
    ]),
    path: Type.String(),
    value: Type.Optional(Type.Unknown()),
    from: Type.Optional(Type.String())
  },
  strict
)
/**
 * A state room's value as it stands (`app.realtime.state()`). `version` counts its changes within `epoch`, which
 * names one run of that count (a new one when the state expired and was set again).
 */
export const StateSnapshot = Type.Object(
  { value: Type.Unknown(), version: Type.Integer({ minimum: 1 }), epoch: Type.String({ minLength: 1 }) },
  strict
)
/**
 * `seq` is where the stream continues from: the next event of this subscription has `seq + 1`. `streams` and
 * `questions` list the room's open token streams and pending questions, when it has any; `state` is the value of a
 * state room, which the room's `state_patch` events change.
 */
export const Subscribed = Type.Object(
  {
    type: Type.Literal(ServerType.Subscribed),
    id: Type.Optional(Id),
    room: Room,
    data: Type.Object(
      {
        seq: Seq,
        epoch: Type.String({ minLength: 1 }),
        recovered: Type.Boolean(),
        snapshot: Type.Optional(Type.Unknown()),
        streams: Type.Optional(Type.Array(StreamState)),
        questions: Type.Optional(Type.Array(QuestionState)),
        state: Type.Optional(StateSnapshot)
      },
      strict
    )
  },
  strict
)
export const Unsubscribed = Type.Object({ type: Type.Literal(ServerType.Unsubscribed), id: Type.Optional(Id), room: Room }, strict)
export const Pong = Type.Object({ type: Type.Literal(ServerType.Pong), id: Type.Optional(Id) }, strict)
export const Ack = Type.Object({ type: Type.Literal(ServerType.Ack), id: Id, data: Type.Unknown() }, strict)
export const ErrorReply = Type.Object(
  {
    type: Type.Literal(ServerType.Error),
    id: Type.Optional(Id),
    room: Type.Optional(Room),
    data: Type.Object({ code: Type.String({ minLength: 1 }), message: Type.String() }, strict)
  },
  strict
)
/** A user present in a room: one entry per user, however many connections (tabs, instances) they have there. */
export const PresenceMember = Type.Object(
  { user: Type.String(), connections: Type.Integer({ minimum: 0 }), info: Type.Optional(Type.Unknown()) },
  strict
)
/** A user's first connection joined the room (`join`), or their last one left it (`leave`, with `connections: 0`). */
const presenceChange = <T extends string>(type: T) => Type.Object({ type: Type.Literal(type), room: Room, data: PresenceMember }, strict)
export const Join = presenceChange(ServerType.Join)
export const Leave = presenceChange(ServerType.Leave)
/** The answer to `presence {room}`. */
export const PresenceList = Type.Object(
  {
    type: Type.Literal(ServerType.Presence),
    id: Type.Optional(Id),
    room: Room,
    data: Type.Object({ members: Type.Array(PresenceMember) }, strict)
  },
  strict
)
/**
 * A registry event. Volatile events have no `seq`. A question (`ask()`) has an `id` to answer with `reply`; the
 * event that ends a token stream names it in `stream`.
 */
export const Event = Type.Object(
  {
    type: Type.String({ minLength: 1 }),
    room: Room,
    id: Type.Optional(Id),
    stream: Type.Optional(Id),
    seq: Type.Optional(Type.Integer({ minimum: 1 })),
    /** The user who published it, for events a client published (always volatile). */
    from: Type.Optional(Type.String({ minLength: 1 })),
    data: Type.Unknown(),
    ts: Type.String()
  },
  strict
)
/** A token stream opened in the room (volatile): what it builds, and its text so far. */
export const StreamOpened = Type.Object({ type: Type.Literal(ServerType.Stream), room: Room, data: StreamState }, strict)
/** Text appended to an open stream; `offset` is the length of the stream's text before it. Volatile. */
export const Delta = Type.Object(
  {
    type: Type.Literal(ServerType.Delta),
    room: Room,
    data: Type.Object({ id: Id, offset: Type.Integer({ minimum: 0 }), text: Type.String() }, strict)
  },
  strict
)
/** A question of the room is settled; every connection that shows it can put it away. Kept in the history. */
export const HitlResolved = Type.Object(
  {
    type: Type.Literal(ServerType.HitlResolved),
    room: Room,
    seq: Type.Optional(Type.Integer({ minimum: 1 })),
    data: Type.Object(
      {
        id: Id,
        status: Type.Union([Type.Literal('answered'), Type.Literal('declined'), Type.Literal('timeout')]),
        /** The user whose reply settled it. */
        by: Type.Optional(Type.String()),
        /** The answer (`answered`) or the reason (`declined`). */
        answer: Type.Optional(Type.Unknown()),
        error: Type.Optional(ReplyError)
      },
      strict
    ),
    ts: Type.String()
  },
  strict
)
/**
 * A change of a state room: `ops` turn version `version - 1` of `epoch` into `version`. Version 1 is a whole value
 * (one `replace` of the root), so it needs nothing before it. A patch that does not follow the client's version asks
 * for a fresh `subscribed`. Kept in the history.
 */
export const StatePatch = Type.Object(
  {
    type: Type.Literal(ServerType.StatePatch),
    room: Room,
    seq: Type.Integer({ minimum: 1 }),
    data: Type.Object(
      { version: Type.Integer({ minimum: 1 }), epoch: Type.String({ minLength: 1 }), ops: Type.Array(JsonPatchOperation) },
      strict
    ),
    ts: Type.String()
  },
  strict
)
/** A server request (`app.realtime.request`), answered with `reply`. */
export const ServerRequest = Type.Object({ type: Type.String({ minLength: 1 }), id: Id, data: Type.Unknown() }, strict)

// One registry or handle() type as a whole message, for the AsyncAPI document.

/** A registry event of one type, as subscribers receive it. */
export const eventOf = (type: string, data: TSchema) =>
  Type.Object(
    {
      type: Type.Literal(type),
      room: Room,
      id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'a question (ask()): answer with reply' })),
      stream: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'the token stream this event ends' })),
      seq: Type.Optional(Type.Integer({ minimum: 1, description: 'absent on volatile events' })),
      data,
      ts: Type.String({ format: 'date-time' })
    },
    strict
  )
/** A registry type sent as a server request (`request()`), answered with `reply`. */
export const requestOf = (type: string, data: TSchema) => Type.Object({ type: Type.Literal(type), id: Id, data }, strict)
/** A client message registered with `handle()`; with an `id` it is answered with `ack` or `error`. */
export const messageOf = (type: string, data: TSchema) => Type.Object({ type: Type.Literal(type), id: Type.Optional(Id), data }, strict)

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
      // Only ever called after check() failed, when TypeBox always has a first error to report.
      const first = compiled.Errors(value).First() as ValueError
      return `${first.path || '/'}: ${first.message}`
    }
  }
}

export const checkEnvelope = compile(ClientEnvelope)
