import type { ErrorMessage, EventMessage, SubscribedMessage } from '../protocol/messages.js'
import type { Position, PresenceChange, PresenceMember, RealtimeClientError, SubscribeOptions } from './api.js'
import { type OpenQuestion, type OpenStream, onRoomEvent, onRoomSubscribed, questionsChanged } from './features.js'
import type { ClientTypeName, ErrorCodeName } from './wire.js'

export interface Sub {
  readonly room: string
  /** The room's open token streams, by id. */
  streams: Map<string, OpenStream>
  /** The room's questions (`ask()`) waiting for an answer, by id. */
  questions: Map<string, OpenQuestion>
  readonly handler: ((event: never) => void) | undefined
  readonly options: SubscribeOptions
  /** False for rooms the server joined the client to: those are not resubscribed on reconnect. */
  readonly explicit: boolean
  seq: number
  epoch: string | undefined
  pendingId: string | undefined
  /** Refused as rate-limited: to be asked again by the retry timer. */
  retry: boolean
  /** With `onPresence`: the members by user, once the list arrived; until then the changes wait in `early`. */
  members: Map<string, PresenceMember> | undefined
  early: PresenceChange[]
}

/**
 * The rooms this client holds, and what the room modules need of the client. The functions of this module and of
 * `features.ts` take it as their first argument (plain functions keep the browser bundle small).
 */
export interface Rooms {
  readonly subs: Map<string, Sub>
  readonly questionListeners: Set<(questions: OpenQuestion[]) => void>
  /** One timer for every subscribe refused as rate-limited: they are asked again together. */
  retryTimer: ReturnType<typeof setTimeout> | undefined
  /** Writes a frame now if the link is open (a subscribe is never queued: every `ready` sends them all again). */
  send(frame: { type: string; id?: string; room?: string; data?: unknown }): void
  nextId(): string
  /** Runs one of the application's callbacks; a throw is reported, never propagated. */
  call<T>(handler: (value: T) => void, value: T): void
  /** The handlers of one event type, from every room. */
  handlersOf(type: string): Iterable<(event: never) => void>
  /** Sends a message and calls back with its answer (before the frames after it in the same batch). */
  expect(message: { type: string; room: string }, resolve: (data: unknown) => void, reject: (err: RealtimeClientError) => void): void
  /** Sends a message with the id given and settles with its answer. */
  request(message: { type: string; room: string }, what: string, timeout: number | undefined, id: string): Promise<unknown>
}

/** Asks for the room, resuming from where it stands once it has an epoch. */
export function sendSubscribe(rooms: Rooms, sub: Sub): void {
  sub.retry = false
  sub.pendingId = rooms.nextId()
  const data = sub.epoch === undefined ? undefined : { since: sub.seq, epoch: sub.epoch }
  rooms.send({ type: 'subscribe' satisfies ClientTypeName, id: sub.pendingId, room: sub.room, data })
}

export function deliver(rooms: Rooms, sub: Sub, event: unknown): void {
  if (sub.handler !== undefined) rooms.call(sub.handler as (event: unknown) => void, event)
  for (const handler of rooms.handlersOf((event as { type: string }).type)) rooms.call(handler as (event: unknown) => void, event)
}

/** A subscription with nothing received yet (or from a saved position), in place of any earlier one of the room. */
export function addSub(rooms: Rooms, room: string, handler: Sub['handler'], options: SubscribeOptions, explicit: boolean): Sub {
  const sub: Sub = {
    room,
    streams: new Map(),
    questions: new Map(),
    handler,
    options,
    explicit,
    seq: options.since ?? 0,
    epoch: options.epoch,
    pendingId: undefined,
    retry: false,
    members: undefined,
    early: []
  }
  rooms.subs.set(room, sub)
  return sub
}

export function removeSub(rooms: Rooms, sub: Sub): boolean {
  if (rooms.subs.get(sub.room) !== sub) return false
  rooms.subs.delete(sub.room)
  if (sub.questions.size > 0) questionsChanged(rooms)
  return true
}

export function onSubscribed(rooms: Rooms, frame: SubscribedMessage): void {
  let sub = rooms.subs.get(frame.room)
  // With an id it answers one of our subscribes: only the latest one for the room counts. An older answer (to a
  // subscribe since unsubscribed, replaced or sent again) must not touch the current subscription.
  if (frame.id !== undefined && sub?.pendingId !== frame.id) return
  // Without one, the server joined this connection to a room.
  sub ??= addSub(rooms, frame.room, undefined, {}, false)
  const { seq, epoch, recovered, snapshot } = frame.data
  sub.pendingId = undefined
  sub.epoch = epoch
  if (!recovered) sub.seq = seq
  sub.options.onSubscribed?.({ recovered, seq, epoch, snapshot })
  onRoomSubscribed(rooms, sub, frame)
}

/** With an id it answers one of our messages; without, the server made this connection leave the room. */
export function onUnsubscribed(rooms: Rooms, room: string, id: string | undefined): void {
  if (id === undefined && rooms.subs.get(room)?.pendingId === undefined) rooms.subs.delete(room)
}

/** An event of a room, in seq order: a repeat is dropped, a gap asks for the room again. */
export function onEvent(rooms: Rooms, frame: EventMessage): void {
  const sub = rooms.subs.get(frame.room)
  if (sub === undefined) return
  if (frame.seq !== undefined) {
    if (frame.seq <= sub.seq) return
    if (frame.seq > sub.seq + 1) {
      // A gap (it should not happen): ask once for the missing events again.
      if (sub.pendingId === undefined) sendSubscribe(rooms, sub)
      return
    }
    sub.seq = frame.seq
  }
  if (onRoomEvent(rooms, sub, frame)) deliver(rooms, sub, frame)
}

/** An `error` answering a subscribe: true when it was one (and is handled here). */
export function onRefused(rooms: Rooms, frame: ErrorMessage, error: RealtimeClientError): boolean {
  const sub = frame.id === undefined ? undefined : [...rooms.subs.values()].find((s) => s.pendingId === frame.id)
  if (sub === undefined) return false
  sub.pendingId = undefined
  if (error.code === ('rate_limited' satisfies ErrorCodeName)) {
    // Too many subscribes at once (e.g. resubscribing many rooms): ask again in a second.
    sub.retry = true
    rooms.retryTimer ??= setTimeout(() => {
      rooms.retryTimer = undefined
      for (const s of rooms.subs.values()) if (s.retry) sendSubscribe(rooms, s)
    }, 1000)
    return true
  }
  rooms.subs.delete(sub.room)
  sub.options.onError?.(error)
  return true
}

/** Where each room stands, for the rooms that got their `subscribed`. */
export function positions(rooms: Rooms): Record<string, Position> {
  const out: Record<string, Position> = {}
  for (const { room, seq, epoch } of rooms.subs.values()) if (epoch !== undefined) out[room] = { seq, epoch }
  return out
}
