import type { Hub } from '../server/hub.js'
import { ApiError, ApiErrorCode } from './errors.js'

/** A room of a request, checked as the WebSocket checks it; `pointer` names where it was. */
export function checkRoom(hub: Hub, room: string, pointer: string): void {
  try {
    hub.checkRoom(room)
  } catch {
    throw new ApiError(400, ApiErrorCode.InvalidRoom, `invalid room name "${room.slice(0, 64)}"`, pointer)
  }
}

/**
 * An event of a request, checked against the registry (always, whatever `validate` says: it comes from another
 * process), with the JSON pointer of the first problem, under `at` (`/events/3` in a batch).
 */
export function checkEvent(hub: Hub, event: { room: string; type: string; data: unknown }, at: string): void {
  checkRoom(hub, event.room, `${at}/room`)
  const check = hub.eventChecker(event.type)
  if (check === undefined) {
    throw new ApiError(400, ApiErrorCode.UnknownType, `unknown event type "${event.type}"`, `${at}/type`)
  }
  if (check.check(event.data)) return
  // explain() says `<path>: <message>`, the path `/` for the data itself.
  const explained = check.explain(event.data)
  const path = explained.slice(0, explained.indexOf(': '))
  const pointer = `${at}/data${path === '/' ? '' : path}`
  throw new ApiError(
    400,
    ApiErrorCode.InvalidMessage,
    `invalid data for "${event.type}" at ${pointer}${explained.slice(path.length)}`,
    pointer
  )
}

/**
 * The adapter's failures as 503 `adapter_failed`: nothing was done, and the request may be retried. The plugin's own
 * errors (already `FST_REALTIME_ADAPTER_FAILED`, or a bad request) pass as they are.
 */
export async function viaAdapter<T>(work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    if (err instanceof ApiError || String((err as { code?: unknown }).code).startsWith('FST_')) throw err
    throw new ApiError(503, ApiErrorCode.AdapterFailed, `the adapter failed: ${(err as Error).message}`)
  }
}
