// Checks that a frame the server sent conforms to `realtime.v1`. Test-only: built from the message catalog, kept out
// of the published code.
import { CATALOG } from '../../src/protocol/catalog.js'
import { compile, Event, ServerRequest } from '../../src/protocol/schemas.js'

const serverChecks = new Map(CATALOG.filter((m) => m.from === 'server').map((m) => [m.type, compile(m.schema)]))
const checkEvent = compile(Event)
const checkServerRequest = compile(ServerRequest)

/**
 * Checks a frame a server sent: a control message against its own schema, anything else as an event or a
 * server request. Returns `undefined` when it conforms, else what is wrong.
 */
export function explainServerMessage(frame: unknown): string | undefined {
  const type = (frame as { type?: unknown } | null)?.type
  const control = typeof type === 'string' ? serverChecks.get(type) : undefined
  if (control !== undefined) return control.check(frame) ? undefined : `${String(type)} ${control.explain(frame)}`
  if (checkEvent.check(frame) || checkServerRequest.check(frame)) return undefined
  return `not an event (${checkEvent.explain(frame)}) nor a request (${checkServerRequest.explain(frame)})`
}
