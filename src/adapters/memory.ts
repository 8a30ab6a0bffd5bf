import { randomBytes } from 'node:crypto'
import type {
  Adapter,
  AdapterHandler,
  HistoryPolicy,
  HistoryResult,
  PresenceChange,
  PresenceEntry,
  PresenceMember,
  Publication,
  StateChanges,
  StateDocument,
  StreamPosition
} from './adapter.js'
import { ttlTimer } from './ttl-timer.js'

interface Entry {
  readonly pub: Publication
  readonly at: number
}

interface Present {
  readonly entry: PresenceEntry
  expiresAt: number
}

/** One room's stream: its seq counter and its bounded history. */
class Stream {
  readonly epoch = randomBytes(6).toString('base64url')
  seq = 0
  subscribed = false
  readonly entries: Entry[] = []

  constructor(
    public policy: HistoryPolicy,
    public lastActivity: number
  ) {}

  /** True when nothing holds the room: not subscribed, and its last activity older than the ttl. */
  expired(now: number): boolean {
    return !this.subscribed && now - this.lastActivity >= this.policy.ttl
  }

  append(pub: Publication, now: number): void {
    this.lastActivity = now
    if (this.policy.size === 0) return
    this.entries.push({ pub, at: now })
    if (this.entries.length > this.policy.size) this.entries.shift()
  }

  /** The events after `since`, or undefined when the history no longer holds all of them. */
  since(since: number, now: number): Publication[] | undefined {
    if (since > this.seq) return undefined
    if (since === this.seq) return []
    let old = 0
    while (old < this.entries.length && now - (this.entries[old] as Entry).at >= this.policy.ttl) old++
    if (old > 0) this.entries.splice(0, old)
    const first = this.entries[0]
    if (first === undefined || first.pub.seq > since + 1) return undefined
    return this.entries.slice(since + 1 - first.pub.seq).map((e) => e.pub)
  }
}

/** The user's member entry in a room's presence, or undefined when they have no connection left there. */
function memberOf(present: Map<string, Present>, user: string, now: number): PresenceMember | undefined {
  let connections = 0
  let info: unknown
  for (const p of present.values()) {
    if (p.entry.userId !== user || p.expiresAt <= now) continue
    connections++
    info ??= p.entry.info
  }
  if (connections === 0) return undefined
  return info === undefined ? { user, connections } : { user, connections, info }
}

const leave = (user: string): PresenceChange => ({ kind: 'leave', member: { user, connections: 0 } })

/** One room's shared state, kept until `expiresAt`. */
interface State {
  readonly fields: Map<string, string>
  expiresAt: number
}

/**
 * The default adapter: one process, no set-up. Every publication is handed to the hub synchronously, before
 * `publish` returns, so an `emit()` reaches local sockets at once. Streams nobody holds are swept after their ttl.
 */
export function memoryAdapter(): Adapter {
  const streams = new Map<string, Stream>()
  const presence = new Map<string, Map<string, Present>>()
  const states = new Map<string, State>()
  /** State rooms' documents, each kept until `expiresAt`. */
  const documents = new Map<string, { doc: StateDocument; expiresAt: number }>()
  let handler: AdapterHandler | undefined

  const sweep = (): void => {
    const now = Date.now()
    for (const [name, stream] of streams) if (stream.expired(now)) streams.delete(name)
    for (const [name, state] of states) if (state.expiresAt <= now) states.delete(name)
    for (const [name, held] of documents) if (held.expiresAt <= now) documents.delete(name)
  }

  // A stream nobody holds goes at most 1.5 ttl after its last activity.
  const sweeper = ttlTimer(sweep)

  /** The room's live stream; a new run (new epoch) when the old one expired. */
  const stream = (name: string, policy: HistoryPolicy, now: number): Stream => {
    let s = streams.get(name)
    if (s === undefined || s.expired(now)) {
      s = new Stream(policy, now)
      streams.set(name, s)
      sweeper.watch(policy.ttl)
    }
    s.policy = policy
    return s
  }

  /** Stamps, stores and hands over a non-volatile event, synchronously: one step, as `publish` and a commit need. */
  const stamp = (name: string, event: { head: string; tail: string; immediate?: boolean }, policy: HistoryPolicy): StreamPosition => {
    const now = Date.now()
    const s = stream(name, policy, now)
    const seq = ++s.seq
    const pub: Publication = {
      room: name,
      seq,
      epoch: s.epoch,
      frame: Buffer.from(event.head + seq + event.tail),
      immediate: event.immediate === true
    }
    s.append(pub, now)
    if (s.subscribed) handler?.publication(pub)
    return { seq, epoch: s.epoch }
  }

  const documentOf = (name: string): StateDocument | undefined => {
    const held = documents.get(name)
    return held !== undefined && held.expiresAt > Date.now() ? held.doc : undefined
  }

  /** Creates the room's state on its first write; the sweeper drops it once it expired. */
  const apply = (name: string, changes: StateChanges, ttl: number): void => {
    const now = Date.now()
    let s = states.get(name)
    if (s === undefined) {
      s = { fields: new Map(), expiresAt: 0 }
      states.set(name, s)
    }
    for (const [field, value] of Object.entries(changes)) {
      if (value === null) s.fields.delete(field)
      else s.fields.set(field, value)
    }
    s.expiresAt = Math.max(s.expiresAt, now + ttl)
    sweeper.watch(ttl)
  }

  /** Removes the room's expired entries; the users left with no connection have left. */
  const expire = (name: string, present: Map<string, Present>, now: number): PresenceChange[] => {
    const users = new Set<string>()
    for (const [id, p] of present) {
      if (p.expiresAt > now) continue
      present.delete(id)
      users.add(p.entry.userId)
    }
    if (present.size === 0) presence.delete(name)
    return [...users].filter((user) => memberOf(present, user, now) === undefined).map(leave)
  }

  return {
    name: 'memory',

    async init(h) {
      handler = h
    },

    async publish(name, event, policy): Promise<StreamPosition> {
      const now = Date.now()
      if (event.volatile) {
        // A volatile event leaves no trace: it neither starts a room's stream nor keeps one alive.
        const s = streams.get(name)
        if (s === undefined || s.expired(now)) return { seq: 0, epoch: '' }
        if (s.subscribed)
          handler?.publication({ room: name, seq: 0, epoch: '', frame: Buffer.from(event.frame), immediate: event.immediate === true })
        return { seq: s.seq, epoch: s.epoch }
      }
      return stamp(name, event, policy)
    },

    async subscribe(name, policy) {
      stream(name, policy, Date.now()).subscribed = true
    },

    async unsubscribe(name) {
      const s = streams.get(name)
      if (s === undefined) return
      s.subscribed = false
      // The history outlives the last subscriber by the ttl, so a client can still resume.
      s.lastActivity = Date.now()
    },

    async history(name, from, policy): Promise<HistoryResult> {
      const now = Date.now()
      const s = stream(name, policy, now)
      const position = { seq: s.seq, epoch: s.epoch }
      if (from.since === undefined || from.epoch !== s.epoch) return { position, events: undefined }
      return { position, events: s.since(from.since, now) }
    },

    async presenceAdd(name, entry, ttl) {
      const now = Date.now()
      let present = presence.get(name)
      if (present === undefined) {
        present = new Map()
        presence.set(name, present)
      }
      const first = memberOf(present, entry.userId, now) === undefined
      present.set(entry.connectionId, { entry, expiresAt: now + ttl })
      return first ? { kind: 'join', member: memberOf(present, entry.userId, now) as PresenceMember } : undefined
    },

    async presenceRemove(name, connectionId) {
      const present = presence.get(name)
      const p = present?.get(connectionId)
      if (present === undefined || p === undefined) return undefined
      present.delete(connectionId)
      if (present.size === 0) presence.delete(name)
      return memberOf(present, p.entry.userId, Date.now()) === undefined ? leave(p.entry.userId) : undefined
    },

    async presenceRefresh(name, connectionIds, ttl) {
      const present = presence.get(name)
      if (present === undefined) return []
      const now = Date.now()
      for (const id of connectionIds) {
        const p = present.get(id)
        if (p !== undefined) p.expiresAt = now + ttl
      }
      return expire(name, present, now)
    },

    async presenceList(name) {
      const present = presence.get(name)
      if (present === undefined) return []
      const now = Date.now()
      const users = new Set<string>()
      for (const p of present.values()) if (p.expiresAt > now) users.add(p.entry.userId)
      return [...users].map((user) => memberOf(present, user, now) as PresenceMember)
    },

    async stateRead(name) {
      return Object.fromEntries(states.get(name)?.fields ?? [])
    },

    async stateWrite(name, changes, ttl) {
      apply(name, changes, ttl)
    },

    async stateClaim(name, field, value, ttl) {
      const held = states.get(name)?.fields.get(field)
      if (held !== undefined) return held
      apply(name, { [field]: value }, ttl)
      return value
    },

    async stateTake(name, field, changes, ttl) {
      if (states.get(name)?.fields.has(field) !== true) return false
      apply(name, { ...changes, [field]: null }, ttl)
      return true
    },

    async documentRead(name) {
      return documentOf(name)
    },

    async documentCommit(name, { base, next, event, ttl }, policy) {
      const held = documentOf(name)
      if (held?.epoch !== base?.epoch || held?.version !== base?.version) return undefined
      documents.set(name, { doc: next, expiresAt: Date.now() + ttl })
      sweeper.watch(ttl)
      return stamp(name, event, policy)
    },

    async close() {
      sweeper.stop()
      handler = undefined
    }
  }
}
