// The message catalog (src/protocol/catalog.ts) is the one list of control messages: the table in docs/PROTOCOL.md,
// the room-carrying types and the client checks are derived from it.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { CATALOG, catalogTable, clientChecks, ROOM_TYPES } from '../src/protocol/catalog.js'
import { ClientType, ServerType } from '../src/protocol/constants.js'

t.test('docs/PROTOCOL.md lists every control message as the catalog does', async (t) => {
  const doc = await readFile('docs/PROTOCOL.md', 'utf8')
  const table = catalogTable()
  t.ok(doc.includes(table), `docs/PROTOCOL.md must contain, under "Messages at a glance":\n${table}`)
})

t.test('the catalog holds every control type once, and what is derived from it agrees', async (t) => {
  const types = CATALOG.map((m) => `${m.from}:${m.type}`)
  t.same(
    [...types].sort(),
    [...Object.values(ClientType).map((type) => `client:${type}`), ...Object.values(ServerType).map((type) => `server:${type}`)].sort()
  )
  t.same([...clientChecks.keys()].sort(), Object.values(ClientType).sort())
  t.same([...ROOM_TYPES].sort(), ['cancel', 'presence', 'publish', 'subscribe', 'unsubscribe'])
  t.same(new Set(CATALOG.map((m) => m.key)).size, CATALOG.length, 'keys are unique')
})
