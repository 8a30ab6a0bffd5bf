import type { Outgoing, PresenceChange, PresenceMember } from '../adapters/adapter.js'
import { ServerType } from '../protocol/constants.js'
import type {
  DeltaMessage,
  ErrorMessage,
  HitlResolvedMessage,
  PongMessage,
  ReadyMessage,
  StatePatchMessage,
  SubscribedMessage,
  UnsubscribedMessage
} from '../protocol/messages.js'

// Every server→client message is built here, from the types of `protocol/messages.ts`, so the types guard the writers
// as well as the readers. Room events are serialized once per emit, in two parts around where the adapter puts the
// seq; the rest are small replies built per connection.

/** The time every message is stamped with (ISO 8601). */
export function now(): string {
  return new Date().toISOString()
}

const json = (message: object): Buffer => Buffer.from(JSON.stringify(message))

export const ready = (data: ReadyMessage['data']): Buffer => json({ type: ServerType.Ready, data } satisfies ReadyMessage)

export const subscribed = (id: string | undefined, room: string, data: SubscribedMessage['data']): Buffer =>
  json({ type: ServerType.Subscribed, id, room, data } satisfies SubscribedMessage)

export const unsubscribed = (id: string | undefined, room: string): Buffer =>
  json({ type: ServerType.Unsubscribed, id, room } satisfies UnsubscribedMessage)

export const pong = (id: string | undefined): Buffer => json({ type: ServerType.Pong, id } satisfies PongMessage)

export const error = (code: string, message: string, id?: string, room?: string): Buffer =>
  json({ type: ServerType.Error, id, room, data: { code, message } } satisfies ErrorMessage)

/**
 * An `ack`. The data is serialized on its own so that a value JSON cannot hold (a function, a symbol, undefined)
 * becomes null, not a missing field.
 */
export const ack = (id: string, data: unknown): Buffer =>
  Buffer.from(`{"type":"${ServerType.Ack}","id":${JSON.stringify(id)},"data":${JSON.stringify(data) ?? 'null'}}`)

export const presenceList = (id: string | undefined, room: string, members: PresenceMember[]): Buffer =>
  json({ type: ServerType.Presence, id, room, data: { members } })

/** A volatile `join`/`leave` for the room's members on every instance. */
export const presenceChange = (room: string, change: PresenceChange): string =>
  JSON.stringify({ type: change.kind === 'join' ? ServerType.Join : ServerType.Leave, room, data: change.member })

/** A server request (`app.realtime.request`), answered with `reply {id}`. */
export const request = (type: string, id: string, data: unknown): Buffer => json({ type, id, data })

/**
 * A room event, ready for the adapter: volatile as one frame, or in two parts around the seq the adapter stamps.
 * `fields` are more envelope fields, serialized with their leading commas (`,"id":"q.1"`). `data` a JSON value cannot
 * hold (undefined, with `validate: false`) is sent as null: an event always has data.
 */
export function event(type: string, room: string, data: unknown, volatile: boolean, fields = '', immediate = false): Outgoing {
  return roomMessage(JSON.stringify({ type, room }).slice(0, -1) + fields, JSON.stringify(data) ?? 'null', volatile, immediate)
}

/** A question of the room is settled (kept in the history, written at once). */
export function hitlResolved(room: string, data: HitlResolvedMessage['data']): Outgoing {
  return roomMessage(`{"type":"${ServerType.HitlResolved}","room":${JSON.stringify(room)}`, JSON.stringify(data), false, true)
}

/** A change of a state room (kept in the history); the adapter commits it together with the document. */
export function statePatch(room: string, data: StatePatchMessage['data']): Extract<Outgoing, { readonly volatile: false }> {
  const head = `{"type":"${ServerType.StatePatch}","room":${JSON.stringify(room)},"seq":`
  return { volatile: false, head, tail: `,"data":${JSON.stringify(data)},"ts":"${now()}"}` }
}

/** A token stream opened in the room, with its state as stored (already JSON). Volatile. */
export const streamOpened = (room: string, state: string): Outgoing => ({
  volatile: true,
  frame: `{"type":"${ServerType.Stream}","room":${JSON.stringify(room)},"data":${state}}`
})

/** Text appended to an open stream. Volatile. */
export const delta = (room: string, data: DeltaMessage['data']): Outgoing => ({
  volatile: true,
  frame: JSON.stringify({ type: ServerType.Delta, room, data } satisfies DeltaMessage)
})

function roomMessage(head: string, data: string, volatile: boolean, immediate: boolean): Outgoing {
  const tail = `,"data":${data},"ts":"${now()}"}`
  return volatile ? { volatile: true, frame: head + tail, immediate } : { volatile: false, head: `${head},"seq":`, tail, immediate }
}
