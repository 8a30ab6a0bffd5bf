import type { ClientState, CloseInfo, ConnectionError, RealtimeClient } from './api.js'
import { RealtimeClientError } from './api.js'
import { answerQuestion, questionList } from './features.js'
import { addSub, positions, type Rooms, removeSub, sendSubscribe } from './rooms.js'
import type { StateListener } from './state.js'
import type { ClientTypeName } from './wire.js'

/** What the public client object reads and calls of a running client (`client.ts`). */
export interface Session {
  state(): ClientState
  /** The transport of the current (or last) link. */
  transport(): 'websocket' | 'sse'
  connectionId(): string | undefined
  userId(): string | undefined
  /** Whether the server said `ready` on the current link. */
  ready(): boolean
  readonly rooms: Rooms
  request(message: { type: string; [key: string]: unknown }, what: string, timeout: number | undefined): Promise<unknown>
  readonly typeHandlers: Map<string, Set<(event: never) => void>>
  readonly requestHandlers: Map<string, (data: never) => unknown>
  readonly stateListeners: Set<(state: ClientState, previous: ClientState, close?: CloseInfo) => void>
  readonly errorListeners: Set<(error: ConnectionError) => void>
  close(): void
}

/** The object `createClient()` returns: the public methods over a running client. */
export function clientApi(s: Session): RealtimeClient {
  const { rooms, request, typeHandlers, requestHandlers, stateListeners, errorListeners } = s
  const client: RealtimeClient = {
    get state() {
      return s.state()
    },
    get transport() {
      return s.transport()
    },
    get connectionId() {
      return s.connectionId()
    },
    get userId() {
      return s.userId()
    },
    subscribe(room, handler, subOptions = {}) {
      const sub = addSub(rooms, room, handler, subOptions, true)
      if (s.ready()) sendSubscribe(rooms, sub)
      return {
        room,
        get seq() {
          return sub.seq
        },
        unsubscribe() {
          if (removeSub(rooms, sub) && s.ready()) rooms.send({ type: 'unsubscribe' satisfies ClientTypeName, id: rooms.nextId(), room })
        }
      }
    },
    positions: () => positions(rooms),
    on(type, handler) {
      const set = typeHandlers.get(type) ?? new Set()
      typeHandlers.set(type, set)
      set.add(handler as (event: never) => void)
      return () => set.delete(handler as (event: never) => void)
    },
    onRequest(type, handler) {
      requestHandlers.set(type, handler)
      return () => requestHandlers.delete(type)
    },
    send(type, data, sendOptions = {}) {
      return request({ type, data }, type, sendOptions.timeout) as Promise<never>
    },
    publish(room, type, data, publishOptions = {}) {
      // A signal that is stale by the time the connection is back is not worth queueing.
      if (s.state() !== 'closed' && !s.ready()) {
        return Promise.reject(new RealtimeClientError('disconnected', 'not connected: a publish is not queued'))
      }
      const message = { type: 'publish' satisfies ClientTypeName, room, data: { type, data } }
      return request(message, `publish ${type}`, publishOptions.timeout).then(() => undefined)
    },
    presence(room, presenceOptions = {}) {
      return request(
        { type: 'presence' satisfies ClientTypeName, room },
        'presence' satisfies ClientTypeName,
        presenceOptions.timeout
      ) as Promise<never>
    },
    questions() {
      return questionList(rooms) as never
    },
    onQuestions(listener) {
      rooms.questionListeners.add(listener as never)
      return () => rooms.questionListeners.delete(listener as never)
    },
    reply(id, data, replyOptions = {}) {
      return answerQuestion(rooms, id, { data }, replyOptions.timeout)
    },
    decline(id, code, message = '', declineOptions = {}) {
      return answerQuestion(rooms, id, { error: { code, message } }, declineOptions.timeout)
    },
    async cancel(room, runId, cancelOptions = {}) {
      await request({ type: 'cancel' satisfies ClientTypeName, room, data: { runId } }, `cancel ${runId}`, cancelOptions.timeout)
    },
    onStateChange(listener) {
      stateListeners.add(listener)
      return () => stateListeners.delete(listener)
    },
    onError(listener) {
      errorListeners.add(listener)
      return () => errorListeners.delete(listener)
    },
    liveState(room, onChange, subOptions) {
      const { stateRooms } = rooms
      const owned = rooms.subs.has(room) ? undefined : client.subscribe(room, undefined, subOptions)
      const stop = stateRooms.watch(room, onChange as StateListener)
      return {
        room,
        get value() {
          return stateRooms.value(room)?.value as never
        },
        get version() {
          return stateRooms.value(room)?.version ?? 0
        },
        unsubscribe() {
          if (!stop()) owned?.unsubscribe()
        }
      }
    },
    close: s.close
  }
  return client
}
