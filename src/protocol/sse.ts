// The text/event-stream side of `realtime.v1`: the paths under the endpoint, the event that ends a stream, the event
// id, and the one reader of the format. No I/O: the server writes and reads ids with these functions; a client reads
// streams with `EventStreamParser` and only sends the last id it saw back.

/** `GET <path>/sse` opens a stream; `POST <path>/sse/<sessionId>` sends it a client message. */
export const SSE_SUFFIX = '/sse'
/** `POST <path>/ticket` trades a bearer token for a single-use ticket, for `EventSource` (`?ticket=`). */
export const TICKET_SUFFIX = '/ticket'
/** The named event that ends a stream with a close code and reason, as a WebSocket close frame would. */
export const CLOSE_EVENT = 'close'

/** A room's position as an event id carries it. */
export interface IdPosition {
  readonly room: string
  readonly epoch: string
  readonly seq: number
}

// An id is the position of every room the stream holds, `room~epoch~seq`, separated by spaces, in the order the rooms
// were subscribed: `workflow:42~k3j9~17 user:alice~k3j9~0`. Each field is percent-encoded where it holds `%`, `~`, a
// space or anything outside printable ASCII, so an id fits in a `Last-Event-ID` header and never holds a line break.

const UNSAFE = /[^\x21-\x24\x26-\x7d]/g
const escapeField = (text: string): string =>
  text.replace(UNSAFE, (c) => Array.from(new TextEncoder().encode(c), (b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''))

/** One room's part of an id. */
export function idPart(room: string, epoch: string, seq: number): string {
  return `${escapeField(room)}~${escapeField(epoch)}~${seq}`
}

/** Reads an id back; throws a message naming what is wrong (the server answers 400 with it). */
export function parseEventId(id: string, maxRooms: number): IdPosition[] {
  if (id.trim() === '') return []
  const parts = id.trim().split(/ +/)
  if (parts.length > maxRooms) throw new Error(`the event id names ${parts.length} rooms; a stream holds at most ${maxRooms}`)
  const seen = new Set<string>()
  return parts.map((part) => {
    const fields = part.split('~')
    const [room, epoch, seq] = fields.map((field) => {
      try {
        return decodeURIComponent(field)
      } catch {
        throw new Error(`the event id has a malformed escape in "${part.slice(0, 64)}"`)
      }
    })
    if (fields.length !== 3 || room === '' || epoch === '' || !/^(0|[1-9]\d{0,15})$/.test(seq as string)) {
      throw new Error(`the event id part "${part.slice(0, 64)}" is not room~epoch~seq`)
    }
    if (seen.has(room as string)) throw new Error(`the event id names room "${(room as string).slice(0, 64)}" twice`)
    seen.add(room as string)
    return { room: room as string, epoch: epoch as string, seq: Number(seq) }
  })
}

/** What `EventStreamParser` reports. */
export interface EventStreamListener {
  /** An event with data: its type (`message` unless an `event:` field named another), its data, the last id then. */
  event(type: string, data: string, lastId: string): void
  /** A comment line (`: heartbeat`). */
  comment?(): void
  /** A `retry:` field, in ms. */
  retry?(ms: number): void
}

/**
 * A text/event-stream reader as the HTML specification has it: `id:` sets the last event id even on an event without
 * data (the server writes such ids when the rooms held change), an id holding NUL is ignored, a field without a colon
 * has an empty value, and an event without data is not dispatched.
 */
export class EventStreamParser {
  private buffer = ''
  private data: string[] = []
  private type = ''

  constructor(
    private readonly listener: EventStreamListener,
    /** The last event id: where a stream that ends now would resume from. */
    public lastId = ''
  ) {}

  push(chunk: string): void {
    this.buffer += chunk
    let nl = this.buffer.indexOf('\n')
    while (nl !== -1) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '')
      this.buffer = this.buffer.slice(nl + 1)
      this.line(line)
      nl = this.buffer.indexOf('\n')
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.listener.event(this.type || 'message', this.data.join('\n'), this.lastId)
      this.data = []
      this.type = ''
      return
    }
    if (line.startsWith(':')) {
      this.listener.comment?.()
      return
    }
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'data') this.data.push(value)
    else if (field === 'id' && !value.includes('\0')) this.lastId = value
    else if (field === 'event') this.type = value
    else if (field === 'retry' && /^\d+$/.test(value)) this.listener.retry?.(Number(value))
  }
}
