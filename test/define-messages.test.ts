// defineMessages: one registry of client→server messages for the server's handle() and the client's send().
import t from 'tap'
import { defineMessages, Type } from '../src/index.js'
import { sdk } from './helpers/client.js'
import { buildApp, sign } from './helpers/index.js'
import { diagnose } from './helpers/typescript.js'

const messages = defineMessages({
  'run:start': { data: Type.Object({ prompt: Type.String() }), ack: Type.Object({ runId: Type.String() }) }
})

t.test('handle() takes a defineMessages entry: its data schema checks the message, the handler returns the ack', async (t) => {
  const app = await buildApp(t)
  app.realtime.handle('run:start', messages['run:start'], ({ data }) => ({ runId: `run-${data.prompt}` }))
  const client = sdk(t, app, { token: sign('alice') })
  const ack = await client.send('run:start', { prompt: 'go' })
  t.same(ack, { runId: 'run-go' })
  await t.rejects(client.send('run:start', { prompt: 1 } as never), { code: 'invalid_message' })
})

t.test('defineMessages refuses a reserved name, a missing data schema and an ack that is not a schema', async (t) => {
  t.throws(() => defineMessages({ subscribe: { data: Type.Object({}) } }), {
    code: 'FST_REALTIME_INVALID_REGISTRY',
    message: /"subscribe" is a reserved control type/
  })
  t.throws(() => defineMessages({ 'run:x': { data: 'nope' as never } }), { message: /message "run:x" must map to a TypeBox schema/ })
  t.throws(() => defineMessages({ 'run:y': { data: Type.Object({}), ack: {} as never } }), {
    message: /message "run:y": ack must be a TypeBox schema/
  })
})

t.test('handle and send are typed from defineMessages: acks inferred, wrong names, payloads and acks do not compile', async (t) => {
  t.same(diagnose('test/types/messages.ts'), [])
})
