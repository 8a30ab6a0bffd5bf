import type { Static } from '@sinclair/typebox'
import type * as S from './schemas.js'

/**
 * The messages of `realtime.v1` as TypeScript types, derived from the schemas in `schemas.ts`.
 * The envelope fields: `type` (required), `room`, `id` (correlation), `seq` (per-room position), `data`, `ts` (ISO 8601).
 */

// Client -> Server
export type SubscribeMessage = Static<typeof S.Subscribe>
export type UnsubscribeMessage = Static<typeof S.Unsubscribe>
export type PingMessage = Static<typeof S.Ping>
export type AuthMessage = Static<typeof S.Auth>
export type ReplyMessage = Static<typeof S.Reply>
export type PresenceRequestMessage = Static<typeof S.PresenceRequest>
export type CancelMessage = Static<typeof S.Cancel>
export type ClientControlMessage =
  | SubscribeMessage
  | UnsubscribeMessage
  | PingMessage
  | AuthMessage
  | ReplyMessage
  | PresenceRequestMessage
  | CancelMessage

// Server -> Client
export type ReadyMessage = Static<typeof S.Ready>
export type SubscribedMessage = Static<typeof S.Subscribed>
export type UnsubscribedMessage = Static<typeof S.Unsubscribed>
export type PongMessage = Static<typeof S.Pong>
export type AckMessage<T = unknown> = Omit<Static<typeof S.Ack>, 'data'> & { data: T }
export type ErrorMessage = Static<typeof S.ErrorReply>
export type StreamMessage = Static<typeof S.StreamOpened>
export type DeltaMessage = Static<typeof S.Delta>
export type HitlResolvedMessage = Static<typeof S.HitlResolved>
export type ServerControlMessage =
  | ReadyMessage
  | SubscribedMessage
  | UnsubscribedMessage
  | PongMessage
  | AckMessage
  | ErrorMessage
  | StreamMessage
  | DeltaMessage
  | HitlResolvedMessage

/**
 * A registry event delivered to a room's subscribers (`seq` is absent on volatile events). `id` marks a question
 * (`ask()`), `stream` the event that ends a token stream.
 */
export interface EventMessage<T extends string = string, D = unknown> {
  type: T
  room: string
  id?: string
  stream?: string
  seq?: number
  data: D
  ts: string
}
/** A user present in a room, with the number of their connections there (one per open tab, across instances). */
export interface PresenceMember {
  readonly user: string
  readonly connections: number
  readonly info?: unknown
}

/** A change of the members of a room: a user's first connection arrived, or their last one left. */
export interface PresenceChange {
  readonly kind: 'join' | 'leave'
  readonly member: PresenceMember
}

/** A server request (`app.realtime.request`): the client answers with `reply {id, data}`. */
export interface RequestMessage<T extends string = string, D = unknown> {
  type: T
  id: string
  data: D
}
/** A user's first connection joined a room (`join`), or their last one left it (`leave`). */
export type PresenceChangeMessage = Static<typeof S.Join> | Static<typeof S.Leave>
/** The answer to `presence {room}`: the room's members. */
export type PresenceListMessage = Static<typeof S.PresenceList>
