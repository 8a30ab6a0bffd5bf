import type { ErrorCodeName } from './constants.js'

/**
 * The messages of `realtime.v1` as TypeScript types. The envelope fields:
 * `type` (required), `room`, `id` (correlation), `seq` (per-room position), `data`, `ts` (ISO 8601).
 */

// Client -> Server

export interface SubscribeMessage {
  readonly type: 'subscribe'
  readonly id?: string
  readonly room: string
  readonly data?: { readonly since?: number; readonly epoch?: string }
}
export interface UnsubscribeMessage {
  readonly type: 'unsubscribe'
  readonly id?: string
  readonly room: string
}
export interface PingMessage {
  readonly type: 'ping'
  readonly id?: string
}
export interface AuthMessage {
  readonly type: 'auth'
  readonly id?: string
  readonly data: { readonly token: string }
}
export interface ReplyMessage {
  readonly type: 'reply'
  readonly id: string
  readonly data?: unknown
  readonly error?: { readonly code: string; readonly message: string }
}
export interface PresenceRequestMessage {
  readonly type: 'presence'
  readonly id?: string
  readonly room: string
}

// Server -> Client

export interface ReadyMessage {
  readonly type: 'ready'
  readonly data: { readonly connectionId: string; readonly userId: string; readonly heartbeatMs: number }
}
export interface SubscribedMessage {
  readonly type: 'subscribed'
  readonly id?: string
  readonly room: string
  readonly data: {
    readonly seq: number
    readonly epoch: string
    readonly recovered: boolean
    readonly snapshot?: unknown
  }
}
export interface UnsubscribedMessage {
  readonly type: 'unsubscribed'
  readonly id?: string
  readonly room: string
}
export interface PongMessage {
  readonly type: 'pong'
  readonly id?: string
}
export interface AckMessage<T = unknown> {
  readonly type: 'ack'
  readonly id: string
  readonly data: T
}
export interface ErrorMessage {
  readonly type: 'error'
  readonly id?: string
  readonly room?: string
  readonly data: { readonly code: ErrorCodeName | (string & {}); readonly message: string }
}
/** A registry event delivered to a room's subscribers. */
export interface EventMessage<T extends string = string, D = unknown> {
  readonly type: T
  readonly room: string
  readonly seq: number
  readonly data: D
  readonly ts: string
}
/** A server request (`app.realtime.request`): the client answers with `reply {id, data}`. */
export interface RequestMessage<T extends string = string, D = unknown> {
  readonly type: T
  readonly id: string
  readonly data: D
}

export type ClientControlMessage = SubscribeMessage | UnsubscribeMessage | PingMessage | AuthMessage | ReplyMessage | PresenceRequestMessage

export type ServerControlMessage = ReadyMessage | SubscribedMessage | UnsubscribedMessage | PongMessage | AckMessage | ErrorMessage
