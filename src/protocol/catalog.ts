import type { TSchema } from '@sinclair/typebox'
import { ClientType, ServerType } from './constants.js'
import * as S from './schemas.js'
import { type Checker, compile } from './schemas.js'

/**
 * One control message of `realtime.v1`. The catalog below is the one list of them: the server's and the client's
 * checks, the types that must carry a room, the AsyncAPI document and the table in docs/PROTOCOL.md are derived from
 * it. Adding a message means its constant (constants.ts), its schema (schemas.ts) and its entry here.
 */
export interface CatalogEntry {
  readonly type: string
  /** Who sends it: `client` (client → server) or `server` (server → client). */
  readonly from: 'client' | 'server'
  /** Its key in the AsyncAPI document. */
  readonly key: string
  readonly schema: TSchema
  /** Whether it must name a room. */
  readonly room: boolean
  /** Whether its `id` correlates it with another message. */
  readonly correlated: boolean
  /** The server messages that may answer it (client messages only). */
  readonly replies?: readonly string[]
  readonly summary: string
}

const answered = [ServerType.Ack, ServerType.Error]

export const CATALOG: readonly CatalogEntry[] = Object.freeze([
  // Client -> Server
  {
    type: ClientType.Subscribe,
    from: 'client',
    key: 'subscribe',
    schema: S.Subscribe,
    room: true,
    correlated: true,
    replies: [ServerType.Subscribed, ServerType.Unsubscribed, ServerType.Error],
    summary: 'Receive the events of a room; with since and epoch, resume after the last event seen'
  },
  {
    type: ClientType.Unsubscribe,
    from: 'client',
    key: 'unsubscribe',
    schema: S.Unsubscribe,
    room: true,
    correlated: true,
    replies: [ServerType.Unsubscribed, ServerType.Error],
    summary: 'Stop receiving a room'
  },
  {
    type: ClientType.Ping,
    from: 'client',
    key: 'ping',
    schema: S.Ping,
    room: false,
    correlated: true,
    replies: [ServerType.Pong],
    summary: 'An application-level heartbeat'
  },
  {
    type: ClientType.Auth,
    from: 'client',
    key: 'auth',
    schema: S.Auth,
    room: false,
    correlated: true,
    replies: answered,
    summary: 'A fresh token before the current one expires'
  },
  {
    type: ClientType.Reply,
    from: 'client',
    key: 'reply',
    schema: S.Reply,
    room: false,
    correlated: true,
    replies: [ServerType.Error],
    summary: 'The answer to a server request'
  },
  {
    type: ClientType.Publish,
    from: 'client',
    key: 'publish',
    schema: S.Publish,
    room: true,
    correlated: true,
    replies: answered,
    summary: "An ephemeral registry event to a room's members (typing, a cursor), if authorize allows it"
  },
  {
    type: ClientType.Cancel,
    from: 'client',
    key: 'cancel',
    schema: S.Cancel,
    room: true,
    correlated: true,
    replies: answered,
    summary: 'Cancel a run of a room, if authorize allows it'
  },
  {
    type: ClientType.Presence,
    from: 'client',
    key: 'presenceRequest',
    schema: S.PresenceRequest,
    room: true,
    correlated: true,
    replies: [ServerType.Presence, ServerType.Error],
    summary: 'Ask who is present in a room'
  },
  // Server -> Client
  {
    type: ServerType.Ready,
    from: 'server',
    key: 'ready',
    schema: S.Ready,
    room: false,
    correlated: false,
    summary: 'Sent once, right after the upgrade'
  },
  {
    type: ServerType.Subscribed,
    from: 'server',
    key: 'subscribed',
    schema: S.Subscribed,
    room: true,
    correlated: true,
    summary: 'A subscription is made; events follow from seq + 1'
  },
  {
    type: ServerType.Unsubscribed,
    from: 'server',
    key: 'unsubscribed',
    schema: S.Unsubscribed,
    room: true,
    correlated: true,
    summary: 'A subscription ended'
  },
  { type: ServerType.Pong, from: 'server', key: 'pong', schema: S.Pong, room: false, correlated: true, summary: 'The answer to ping' },
  {
    type: ServerType.Ack,
    from: 'server',
    key: 'ack',
    schema: S.Ack,
    room: false,
    correlated: true,
    summary: 'The success answer to a message with an id'
  },
  {
    type: ServerType.Error,
    from: 'server',
    key: 'error',
    schema: S.ErrorReply,
    room: false,
    correlated: true,
    summary: 'A message was refused or failed; the connection stays'
  },
  {
    type: ServerType.Join,
    from: 'server',
    key: 'join',
    schema: S.Join,
    room: true,
    correlated: false,
    summary: "A user's first connection joined a presence room"
  },
  {
    type: ServerType.Leave,
    from: 'server',
    key: 'leave',
    schema: S.Leave,
    room: true,
    correlated: false,
    summary: "A user's last connection left a presence room"
  },
  {
    type: ServerType.Presence,
    from: 'server',
    key: 'presence',
    schema: S.PresenceList,
    room: true,
    correlated: true,
    summary: 'The members of a room'
  },
  {
    type: ServerType.Stream,
    from: 'server',
    key: 'stream',
    schema: S.StreamOpened,
    room: true,
    correlated: false,
    summary: 'A token stream opened in a room: the event it builds and its text so far (volatile)'
  },
  {
    type: ServerType.Delta,
    from: 'server',
    key: 'delta',
    schema: S.Delta,
    room: true,
    correlated: false,
    summary: 'Text appended to an open token stream at an offset (volatile)'
  },
  {
    type: ServerType.HitlResolved,
    from: 'server',
    key: 'hitlResolved',
    schema: S.HitlResolved,
    room: true,
    correlated: false,
    summary: 'A question of the room was answered, declined or timed out'
  },
  {
    type: ServerType.StatePatch,
    from: 'server',
    key: 'statePatch',
    schema: S.StatePatch,
    room: true,
    correlated: false,
    summary: 'A change of a state room: a JSON Patch and the version it makes'
  }
] satisfies CatalogEntry[])

/** The compiled schema of each client control type. */
export const clientChecks: ReadonlyMap<string, Checker> = new Map(
  CATALOG.filter((m) => m.from === 'client').map((m) => [m.type, compile(m.schema)])
)

/** The client messages that must name a valid room. */
export const ROOM_TYPES: ReadonlySet<string> = new Set(CATALOG.filter((m) => m.from === 'client' && m.room).map((m) => m.type))

/** The catalog as the markdown table of docs/PROTOCOL.md ("Messages at a glance"). */
export function catalogTable(): string {
  const rows = CATALOG.map((m) => {
    const direction = m.from === 'client' ? 'client → server' : 'server → client'
    const replies = m.replies === undefined ? '' : m.replies.map((r) => `\`${r}\``).join(', ')
    return `| \`${m.type}\` | ${direction} | ${m.room ? 'yes' : 'no'} | ${replies} | ${m.summary} |`
  })
  return ['| type | direction | room | answered by | what it is |', '| --- | --- | --- | --- | --- |', ...rows].join('\n')
}
