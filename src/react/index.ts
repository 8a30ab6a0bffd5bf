/**
 * `fastify-realtime/react`: React bindings for the client. Create the client once, outside your components (module
 * scope, like a query client), and hand it to `<RealtimeProvider client={client}>`. The hooks share one subscription
 * per room, whatever number of components use it, and let it go a tick after the last one unmounts, so React's
 * StrictMode (mount, unmount, mount again) opens one connection and one subscription.
 */
import { createContext, createElement, type ReactNode, useCallback, useContext, useEffect, useState, useSyncExternalStore } from 'react'
import type {
  ClientEvent,
  ClientQuestion,
  ClientState,
  CloseInfo,
  ConnectionError,
  PresenceMember,
  RealtimeClient,
  RealtimeClientError,
  SubscribeInfo
} from '../client/index.js'
import type { EventRegistry, MessageRegistry } from '../events.js'

type AnyClient = RealtimeClient<EventRegistry, MessageRegistry>

const ClientContext = createContext<AnyClient | undefined>(undefined)

/** Any client, whatever registries type it (the hooks take theirs as type arguments). */
export type AnyRealtimeClient = { readonly [K in keyof RealtimeClient]: unknown }

export interface RealtimeProviderProps {
  /** The client, created once outside React with `createClient()`. The provider never closes it. */
  client: AnyRealtimeClient
  children?: ReactNode
}

/** Makes `client` available to the hooks below it. */
export function RealtimeProvider({ client, children }: RealtimeProviderProps): ReactNode {
  return createElement(ClientContext.Provider, { value: client as AnyClient }, children)
}

/** The client of the nearest `RealtimeProvider`. */
export function useRealtime<E extends EventRegistry = EventRegistry, M extends MessageRegistry = EventRegistry>(): RealtimeClient<E, M> {
  const client = useContext(ClientContext)
  if (client === undefined) throw new Error('fastify-realtime/react: wrap your components in <RealtimeProvider client={client}>')
  return client as unknown as RealtimeClient<E, M>
}

/** What a room looks like to the hooks: replaced as a whole on every change, so React can compare it. */
export interface RoomView<E extends EventRegistry = EventRegistry> {
  /** The room's finished events in order (the partial events of a growing stream are in `streams`), the last `limit`. */
  readonly events: readonly ClientEvent<E>[]
  /** The token streams of the room by stream id: the latest partial event, or the finished one. */
  readonly streams: Readonly<Record<string, ClientEvent<E>>>
  /** The id of the stream that last opened. */
  readonly lastStream: string | undefined
  /** The members present (rooms with presence on), one per user. */
  readonly members: readonly PresenceMember[]
  /** The latest `subscribed`: `recovered` false means redraw (from `snapshot`). */
  readonly info: SubscribeInfo | undefined
  /** The server refused the subscription (or, with `info` set, the member list). */
  readonly error: RealtimeClientError | undefined
}

/**
 * One subscription per client and key, shared by every hook that uses it: `view` is what they render, replaced as a
 * whole on every change; the subscription goes a tick after the last hook lets it go, unless one takes it again
 * meanwhile (StrictMode's second mount).
 */
interface Shared<V> {
  view: V
  readonly listeners: Set<() => void>
  users: number
  release: ReturnType<typeof setTimeout> | undefined
  stop(): void
}

/** A kind of shared subscription (a room, a state room): where its entries are, its view before anything came, how it opens. */
interface Kind<V> {
  readonly entries: WeakMap<object, Map<string, Shared<V>>>
  readonly empty: V
  /** Subscribes for `key`, calling `update` on every change; returns what stops it. */
  open(client: AnyClient, key: string, shared: { readonly view: V }, update: (change: Partial<V>) => void): () => void
}

function acquire<V>(kind: Kind<V>, client: AnyClient, key: string): Shared<V> {
  const byKey = kind.entries.get(client) ?? new Map<string, Shared<V>>()
  kind.entries.set(client, byKey)
  const existing = byKey.get(key)
  if (existing !== undefined) {
    clearTimeout(existing.release)
    existing.users++
    return existing
  }
  // The subscription's callbacks update the view, so the entry is made first and given what stops it after.
  const entry: Omit<Shared<V>, 'stop'> = { view: kind.empty, listeners: new Set(), users: 1, release: undefined }
  const update = (change: Partial<V>): void => {
    entry.view = { ...entry.view, ...change }
    for (const listener of entry.listeners) listener()
  }
  const shared = Object.assign(entry, { stop: kind.open(client, key, entry, update) })
  byKey.set(key, shared)
  return shared
}

function release<V>(kind: Kind<V>, client: AnyClient, key: string, shared: Shared<V>): void {
  if (--shared.users > 0) return
  shared.release = setTimeout(() => {
    kind.entries.get(client)?.delete(key)
    shared.stop()
  }, 0)
}

/** Takes the shared entry of `key` while the component is mounted and renders with its view. */
function useShared<V>(kind: Kind<V>, key: string): V {
  const client = useRealtime()
  const [shared, setShared] = useState<Shared<V> | undefined>(undefined)
  useEffect(() => {
    const taken = acquire(kind, client, key)
    setShared(taken)
    return () => release(kind, client, key, taken)
  }, [kind, client, key])
  const subscribe = useCallback(
    (listener: () => void) => {
      shared?.listeners.add(listener)
      return () => void shared?.listeners.delete(listener)
    },
    [shared]
  )
  return useSyncExternalStore(subscribe, () => shared?.view ?? kind.empty)
}

/** How many finished events a room view keeps. */
const LIMIT = 500

const ROOMS: Kind<RoomView> = {
  entries: new WeakMap(),
  empty: Object.freeze({ events: [], streams: {}, lastStream: undefined, members: [], info: undefined, error: undefined }),
  open(client, room, shared, update) {
    const subscription = client.subscribe(
      room,
      (event) => {
        const { view } = shared
        if (event.stream !== undefined) {
          const opened = view.streams[event.stream] === undefined
          update({ streams: { ...view.streams, [event.stream]: event }, lastStream: opened ? event.stream : view.lastStream })
        }
        if (event.partial !== true) update({ events: [...view.events, event].slice(-LIMIT) })
      },
      {
        onSubscribed: (info) => update({ info, error: undefined }),
        onError: (error) => update({ error }),
        onPresence: (members) => update({ members })
      }
    )
    return () => subscription.unsubscribe()
  }
}

/** Subscribes to `room` while the component is mounted and renders with its view (events, streams, members, info). */
export function useRoom<E extends EventRegistry = EventRegistry>(room: string): RoomView<E> {
  return useShared(ROOMS, room) as unknown as RoomView<E>
}

/** A state room as the hooks see it: replaced as a whole on every change. */
export interface RoomStateView<T = unknown> {
  /** The value as it stands; undefined until it arrived, or while the room has none. */
  readonly value: T | undefined
  /** The version of `value` (0 while there is none). */
  readonly version: number
}

const STATES: Kind<RoomStateView> = {
  entries: new WeakMap(),
  empty: Object.freeze({ value: undefined, version: 0 }),
  open(client, room, _shared, update) {
    let held: { readonly value: unknown; readonly version: number; unsubscribe(): void } | undefined
    held = client.liveState(room, (value) => {
      if (held !== undefined) update({ value, version: held.version })
    })
    // For a room it holds already, liveState() calls back before it returns the handle: the value is read here.
    update({ value: held.value, version: held.version })
    return () => held.unsubscribe()
  }
}

/**
 * Follows a state room (`app.realtime.state()` on the server) while the component is mounted: its value (a new object
 * after each change, so React sees it changed) and version. One `liveState()` per room, shared by every component.
 */
export function useRoomState<T = unknown>(room: string): RoomStateView<T> {
  return useShared(STATES, room) as RoomStateView<T>
}

export interface StreamView<E extends EventRegistry = EventRegistry> {
  /** The text so far of the stream's field (the finished text once `done`). */
  readonly text: string
  /** True once the stream's finished event arrived. */
  readonly done: boolean
  readonly event: ClientEvent<E> | undefined
}

/**
 * A token stream of `room` as a growing string: the stream `id`, or else the one that opened last. `field` names the
 * field of the event's data that holds the text (default `content`, as in `agent:thought`).
 */
export function useStream<E extends EventRegistry = EventRegistry>(
  room: string,
  options: { id?: string; field?: string } = {}
): StreamView<E> {
  const view = useRoom<E>(room)
  const id = options.id ?? view.lastStream
  const event = id === undefined ? undefined : view.streams[id]
  const value = (event?.data as Record<string, unknown> | undefined)?.[options.field ?? 'content']
  return { text: typeof value === 'string' ? value : '', done: event !== undefined && event.partial !== true, event }
}

/** The members present in `room` (the server must have presence on for it), one per user. */
export function usePresence(room: string): readonly PresenceMember[] {
  return useRoom(room).members
}

/** The open questions (`ask()`) of the rooms this client holds, or of one room; answer with `client.reply()`. */
export function useQuestions<E extends EventRegistry = EventRegistry>(room?: string): ClientQuestion<E>[] {
  const client = useRealtime<E>()
  const [questions, setQuestions] = useState(() => client.questions())
  useEffect(() => {
    setQuestions(client.questions())
    return client.onQuestions(setQuestions)
  }, [client])
  return room === undefined ? questions : questions.filter((q) => q.room === room)
}

export interface ConnectionView {
  readonly state: ClientState
  /** How the last connection ended, when a close caused the latest state change. */
  readonly close: CloseInfo | undefined
  /** The latest failure (`onError`), until the connection is open again. */
  readonly error: ConnectionError | undefined
}

/** The connection's state, how it last closed, and its latest failure. */
export function useConnection(): ConnectionView {
  const client = useRealtime()
  const [view, setView] = useState<ConnectionView>(() => ({ state: client.state, close: undefined, error: undefined }))
  useEffect(() => {
    setView((v) => ({ ...v, state: client.state }))
    const offState = client.onStateChange((state, _previous, close) =>
      setView((v) => ({ state, close, error: state === 'open' ? undefined : v.error }))
    )
    const offError = client.onError((error) => setView((v) => ({ ...v, error })))
    return () => {
      offState()
      offError()
    }
  }, [client])
  return view
}
