import type {
  DeltaMessage,
  HitlResolvedMessage,
  PresenceChangeMessage,
  StatePatchMessage,
  SubscribedMessage
} from '../protocol/messages.js'
import { type PresenceChange, type PresenceMember, RealtimeClientError, type SubscribeOptions } from './api.js'
import { deliver, type Rooms, type Sub, sendSubscribe } from './rooms.js'
import type { ClientTypeName, ErrorCodeName, ServerTypeName } from './wire.js'

// The features of a room beyond its events: token streams (a growing text), questions waiting for an answer, the
// value of a state room (state.ts), and the members present. Each is rebuilt from `subscribed` after every (re)subscribe, then kept up by the frames.

/** A token stream of a room as the client assembles it. */
export interface OpenStream {
  readonly id: string
  readonly type: string
  readonly field: string
  readonly data: unknown
  readonly ts: string
  text: string
}

/** A question of a room (`ask()`), waiting for its first answer. */
export interface OpenQuestion {
  readonly id: string
  readonly room: string
  readonly type: string
  readonly data: unknown
  readonly ts: string
}

/** The open questions of every room held, oldest first. */
export function questionList(rooms: Rooms): OpenQuestion[] {
  return [...rooms.subs.values()].flatMap((sub) => [...sub.questions.values()]).sort((a, b) => a.ts.localeCompare(b.ts))
}

export function questionsChanged(rooms: Rooms): void {
  const list = questionList(rooms)
  for (const listener of rooms.questionListeners) listener(list)
}

/** A stream opened (or listed in `subscribed`): handlers get it as a partial event with the text so far. */
export function onStream(rooms: Rooms, room: string, data: OpenStream): void {
  const sub = rooms.subs.get(room)
  if (sub === undefined) return
  const stream = { ...data }
  sub.streams.set(stream.id, stream)
  deliver(rooms, sub, partial(room, stream))
}

function partial(room: string, s: OpenStream): unknown {
  return { type: s.type, room, data: { ...(s.data as object), [s.field]: s.text }, ts: s.ts, stream: s.id, partial: true }
}

/** Text appended at `offset`: what the client already has is skipped, a gap asks for the text so far again. */
export function onDelta(rooms: Rooms, frame: DeltaMessage): void {
  const sub = rooms.subs.get(frame.room)
  const stream = sub?.streams.get(frame.data.id)
  if (sub === undefined || stream === undefined) return
  const { offset, text } = frame.data
  if (offset > stream.text.length) {
    if (sub.pendingId === undefined) sendSubscribe(rooms, sub)
    return
  }
  if (offset + text.length <= stream.text.length) return
  stream.text += text.slice(stream.text.length - offset)
  deliver(rooms, sub, partial(frame.room, stream))
}

/** The room's streams and questions as they stand at `subscribed`; presence is asked for again. */
export function onRoomSubscribed(rooms: Rooms, sub: Sub, { room, data }: SubscribedMessage): void {
  if (sub.options.onPresence !== undefined) askPresence(rooms, sub)
  rooms.stateRooms.snapshot(room, data.state)
  // The room's open streams as they stand now: the text so far, which the deltas that follow extend.
  sub.streams = new Map()
  for (const stream of data.streams ?? []) onStream(rooms, room, stream)
  // The questions still open now; a replayed one comes again as an event, a settled one leaves with hitl_resolved.
  sub.questions = new Map((data.questions ?? []).map((q) => [q.id, { ...q, room }]))
  questionsChanged(rooms)
}

/** Replies to a question with its id and room; the server acks the first answer. A settled one is dropped here. */
export function answerQuestion(
  rooms: Rooms,
  id: string,
  body: { data?: unknown; error?: unknown },
  timeout: number | undefined
): Promise<void> {
  const question = questionList(rooms).find((q) => q.id === id)
  if (question === undefined)
    return Promise.reject(new RealtimeClientError('unknown_request' satisfies ErrorCodeName, `no open question "${id}"`))
  return rooms.request({ type: 'reply' satisfies ClientTypeName, room: question.room, ...body }, `reply ${id}`, timeout, id).then(
    () => undefined,
    (err: RealtimeClientError) => {
      if (err.code === ('already_answered' satisfies ErrorCodeName) || err.code === ('unknown_request' satisfies ErrorCodeName)) {
        rooms.subs.get(question.room)?.questions.delete(id)
        questionsChanged(rooms)
      }
      throw err
    }
  )
}

/** Presence is not replayed on resume: after each `subscribed` the list is asked again, and changes applied on top. */
function askPresence(rooms: Rooms, sub: Sub): void {
  sub.members = undefined
  sub.early = []
  rooms.expect(
    { type: 'presence' satisfies ClientTypeName, room: sub.room },
    (data) => {
      if (rooms.subs.get(sub.room) !== sub) return
      const members = new Map((data as PresenceMember[]).map((member) => [member.user, member]))
      sub.members = members
      // A join or leave that overtook the answer: applying it again is harmless, skipping it could lose it.
      for (const change of sub.early.splice(0)) applyChange(members, change)
      reportPresence(rooms, sub, members, undefined)
    },
    (error) => {
      // A lost connection asks again after the next `subscribed`.
      if (rooms.subs.get(sub.room) !== sub || error.code === 'disconnected' || error.code === 'closed') return
      sub.options.onError?.(error)
    }
  )
}

export function onPresenceChange(rooms: Rooms, frame: PresenceChangeMessage): void {
  const sub = rooms.subs.get(frame.room)
  if (sub?.options.onPresence === undefined) return
  const change: PresenceChange = { kind: frame.type, member: frame.data }
  if (sub.members === undefined) {
    sub.early.push(change)
    return
  }
  applyChange(sub.members, change)
  reportPresence(rooms, sub, sub.members, change)
}

function applyChange(members: Map<string, PresenceMember>, { kind, member }: PresenceChange): void {
  if (kind === 'join') members.set(member.user, member)
  else members.delete(member.user)
}

function reportPresence(rooms: Rooms, sub: Sub, members: Map<string, PresenceMember>, change: PresenceChange | undefined): void {
  const onPresence = sub.options.onPresence as NonNullable<SubscribeOptions['onPresence']>
  rooms.call((list) => onPresence(list, change), [...members.values()])
}

/**
 * What an event of a held room does to its features, in order: it may change a state room, settle or open a question,
 * or finish a stream. False when it is not for the handlers (`state_patch`, `hitl_resolved`).
 */
export function onRoomEvent(
  rooms: Rooms,
  sub: Sub,
  frame: { type: string; room: string; id?: string; seq?: number; stream?: string; data: unknown; ts: string }
): boolean {
  // A state room's change. One that does not follow the value held is a gap: the client has not really received it,
  // so its seq is not counted (a resume then asks for it again, and the later patches after it), and the room is
  // asked for again. Counting it would drop the same patch when the resume replays it, leaving the value behind.
  if (frame.type === ('state_patch' satisfies ServerTypeName)) {
    if (rooms.stateRooms.patch(frame.room, (frame as StatePatchMessage).data)) return false
    if (frame.seq !== undefined) sub.seq = frame.seq - 1
    if (sub.pendingId === undefined) sendSubscribe(rooms, sub)
    return false
  }
  if (frame.type === ('hitl_resolved' satisfies ServerTypeName)) {
    if (sub.questions.delete((frame as HitlResolvedMessage).data.id)) questionsChanged(rooms)
    return false
  }
  // An event with an id is a question (`ask()`): open until its hitl_resolved.
  if (frame.id !== undefined) {
    sub.questions.set(frame.id, { id: frame.id, room: frame.room, type: frame.type, data: frame.data, ts: frame.ts })
    questionsChanged(rooms)
  }
  // The event that ends a stream holds its whole text: the partial one is done.
  if (frame.stream !== undefined) sub.streams.delete(frame.stream)
  return true
}
