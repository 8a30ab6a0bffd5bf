import t from 'tap'
import { diagnose } from './helpers/typescript.js'

t.test('a merged registry types emit, handle, request and the event union', async (t) => {
  t.same(diagnose('test/types/registry.ts'), [])
})

t.test('without a merged registry the agentEvents preset types app.realtime', async (t) => {
  t.same(diagnose('test/types/default.ts'), [])
})

t.test('the client is typed by the server registry and the handle() schemas', async (t) => {
  t.same(diagnose('test/types/client.ts'), [])
})

t.test('the test client is typed by the merged registry and the handle() schemas', async (t) => {
  t.same(diagnose('test/types/testing.ts'), [])
})

t.test('a state room is typed by its schema or by the caller, on the server and in the client', async (t) => {
  t.same(diagnose('test/types/state.ts'), [])
})

t.test('a wrong event name and a wrong payload do not compile', async (t) => {
  const errors = diagnose('test/types/negative-control.ts')
  t.equal(errors.length, 2, errors.join('\n'))
  t.match(errors[0], /negative-control\.ts:8 .*"agent:thougth"/s)
  t.match(errors[1], /negative-control\.ts:9 .*Type 'number' is not assignable to type 'string'/s)
})
