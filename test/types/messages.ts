// Type tests of defineMessages: the server's handle() and the client's send() typed from one registry, acks inferred.
// Compiled by test/define-messages.test.ts; every @ts-expect-error must be needed, or the compile fails.
import Fastify from 'fastify'
import { createClient } from '../../src/client/index.js'
import realtime, { defineMessages, Type } from '../../src/index.js'

const messages = defineMessages({
  'run:start': { data: Type.Object({ prompt: Type.String() }), ack: Type.Object({ runId: Type.String() }) },
  'run:note': { data: Type.Object({ text: Type.String() }) }
})

const app = Fastify()
await app.register(realtime, { jwt: { secret: 'x'.repeat(32) } })
app.realtime.handle('run:start', messages['run:start'], ({ data }) => ({ runId: data.prompt }))
app.realtime.handle('run:note', messages['run:note'], ({ data }) => data.text.length)
// @ts-expect-error the handler must return the declared ack
app.realtime.handle('run:start', messages['run:start'], () => ({ runId: 1 }))
// @ts-expect-error prompt is a string
app.realtime.handle('run:start', messages['run:start'], ({ data }) => ({ runId: data.prompt.toFixed() }))
// The bare schema form still works.
app.realtime.handle('ping:me', Type.Object({ n: Type.Number() }), ({ data }) => data.n + 1)

const client = createClient({ url: 'ws://localhost:3000/ws', messages })
const ack = await client.send('run:start', { prompt: 'go' })
const runId: string = ack.runId
// @ts-expect-error the ack has no such field
await client.send('run:start', { prompt: 'go' }).then((a) => a.nope)
// @ts-expect-error prompt must be a string
await client.send('run:start', { prompt: 1 })
// @ts-expect-error no such message
await client.send('run:stop', {})
const note: unknown = await client.send('run:note', { text: 'hi' })

export { note, runId }
