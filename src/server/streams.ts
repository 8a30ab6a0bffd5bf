import { randomBytes } from 'node:crypto'
import { FST_REALTIME_INVALID_EVENT } from '../errors.js'
import type { StreamHandle, StreamOptions } from '../types.js'
import * as frames from './frames.js'
import type { Hub } from './hub.js'
import { StateField } from './state.js'

export type { StreamHandle } from '../types.js'

const DEFAULT_WINDOW = 30

/**
 * A token stream: the text of one event, growing. Deltas are volatile frames, coalesced per window; the text so far
 * is kept in the room's shared state, so a client that subscribes (or resumes) in the middle gets it in `subscribed`,
 * then the deltas, never the whole token history. `end()` emits the finished event once, as an ordinary event.
 */
export function openStream(hub: Hub, room: string, event: unknown, options: StreamOptions = {}): StreamHandle {
  hub.checkRoom(room)
  const { type, data } = hub.validateEvent(event)
  const field = options.field ?? 'content'
  const window = options.window ?? DEFAULT_WINDOW
  if (!Number.isInteger(window) || window < 0 || window > 60_000) {
    throw new FST_REALTIME_INVALID_EVENT(`stream window must be a whole number of ms from 0 to 60000 (got ${window})`)
  }
  const base = data as Record<string, unknown>
  if (typeof base?.[field] !== 'string') {
    throw new FST_REALTIME_INVALID_EVENT(`stream "${type}": data.${field} must be a string, the text the stream appends to`)
  }
  const id = `s.${randomBytes(9).toString('base64url')}`
  const ts = frames.now()
  const log = hub.log.child({ room, stream: id })
  const stateField = StateField.stream(id)
  /** Text sent (and stored), and text appended since. */
  let sent = base[field] as string
  let pending = ''
  let ended = false
  let lastFlush = 0
  let timer: NodeJS.Timeout | undefined
  // Writes run one after another, in order: the state, then the frame.
  let chain: Promise<unknown> = Promise.resolve()

  const state = (text: string): string => JSON.stringify({ id, type, field, data: { ...base, [field]: '' }, text, ts })
  const ttl = (): number => hub.policyOf(room).ttl
  const enqueue = <T>(step: () => Promise<T>): Promise<T> => {
    const next = chain.then(step)
    chain = next.catch((err: unknown) => log.warn({ err }, 'realtime stream write failed'))
    return next
  }

  /** Sends what was appended since the last delta: the text so far to the room's state, the delta to its members. */
  const flush = (): void => {
    timer = undefined
    lastFlush = Date.now()
    const offset = sent.length
    const text = pending
    sent += pending
    pending = ''
    const stored = state(sent)
    void enqueue(async () => {
      await hub.adapter.stateWrite(room, { [stateField]: stored }, ttl())
      await hub.publish(room, frames.delta(room, { id, offset, text }))
    })
  }

  const opened = state(sent)
  void enqueue(async () => {
    await hub.adapter.stateWrite(room, { [stateField]: opened }, ttl())
    await hub.publish(room, frames.streamOpened(room, opened))
  })

  return {
    id,
    get text() {
      return sent + pending
    },
    append(text) {
      if (ended) throw new FST_REALTIME_INVALID_EVENT(`stream ${id} has ended`)
      if (typeof text !== 'string') throw new FST_REALTIME_INVALID_EVENT('stream.append(text): text must be a string')
      if (text === '') return
      pending += text
      timer ??= setTimeout(flush, Math.max(0, lastFlush + window - Date.now()))
    },
    end() {
      if (ended) return Promise.reject(new FST_REALTIME_INVALID_EVENT(`stream ${id} has ended`))
      ended = true
      clearTimeout(timer)
      const whole = { type, data: { ...base, [field]: sent + pending } }
      return enqueue(async () => {
        // Closed for late joiners first: one who comes now gets the finished event, through the history or live.
        await hub.adapter.stateWrite(room, { [stateField]: null }, ttl())
        return hub.emit(room, whole, {}, `,"stream":"${id}"`)
      })
    }
  }
}
