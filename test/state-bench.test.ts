// Keeps the state-room benchmark honest: one node of a 200-node task graph changes per update, and each patch must
// stay within 5 % of the whole update; a late joiner and the patched copy must equal the server's value.
import t from 'tap'
import { markdown, measure } from '../bench/state/run.js'

t.test('one changed node of a 200-node graph costs at most 5 % of the whole update, and every copy ends equal', async (t) => {
  const result = await measure({ nodes: 200, updates: 40 })
  t.ok(result.maxShare <= 0.05, `largest patch ${result.patchBytes.max} B of ${result.fullBytes} B`)
  t.equal(result.lateJoinerEqual, true, "the late joiner's value is the server's")
  t.equal(result.patchedEqual, true, 'the value built from the patches is the server’s')
  t.match(markdown(result), /\| 200 nodes, 40 updates of one node \| [\d,]+ B \|/)
})
