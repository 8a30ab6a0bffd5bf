// The AsyncAPI export: app.realtime.asyncapi() and GET <path>/asyncapi.json, checked by @asyncapi/parser.
import { Parser } from '@asyncapi/parser'
import Fastify from 'fastify'
import t from 'tap'
import realtime, { agentEvents, defineEvents, Type } from '../src/index.js'
import { buildApp, SECRET } from './helpers/index.js'

const parser = new Parser()

/** The parser's findings of severity error (0) or warning (1); hints and information are left out. */
async function problems(document: unknown): Promise<string[]> {
  const { diagnostics } = await parser.parse(JSON.stringify(document))
  return diagnostics.filter((d) => d.severity <= 1).map((d) => `${d.code} at ${d.path.join('/')}: ${d.message}`)
}

t.test('the document of an app with the agent preset and two handle() types validates as AsyncAPI 3.0', async (t) => {
  const app = await buildApp(t, { path: '/realtime' })
  app.realtime.handle('run:start', Type.Object({ prompt: Type.String({ maxLength: 2000 }) }), () => ({ runId: '1' }))
  app.realtime.handle('run.start', Type.Object({}), () => null)
  const doc = app.realtime.asyncapi()
  t.same(await problems(doc), [])
  t.equal(doc.asyncapi, '3.0.0')
  t.same(doc.info.title, 'Real-time API')
  const channel = doc.channels.realtime as { address: string; messages: Record<string, unknown> }
  t.equal(channel.address, '/realtime')
  const messages = doc.components.messages as Record<string, { name: string; payload: any; correlationId?: unknown }>
  t.match(messages['event.agent.thought'], {
    name: 'agent:thought',
    payload: {
      type: 'object',
      additionalProperties: false,
      required: ['type', 'room', 'data', 'ts'],
      properties: {
        type: { const: 'agent:thought' },
        seq: { type: 'integer', minimum: 1 },
        ts: { type: 'string', format: 'date-time' },
        data: { type: 'object', required: ['runId', 'content'], properties: { content: { type: 'string' }, step: { type: 'integer' } } }
      }
    }
  })
  t.notOk('correlationId' in (messages['event.agent.thought'] as object), 'an event answers nothing')
  t.match(messages['message.run.start'], {
    name: 'run:start',
    correlationId: { location: '$message.payload#/id' },
    payload: {
      properties: { type: { const: 'run:start' }, data: { properties: { prompt: { maxLength: 2000 } } } },
      required: ['type', 'data']
    }
  })
  t.match(messages['message.run.start_'], { name: 'run.start' }, 'names that map to one key stay apart')
  t.match(messages.subscribe, { name: 'subscribe', payload: { properties: { data: { properties: { since: { type: 'integer' } } } } } })
  t.match(messages.serverRequest?.payload.anyOf, [{ properties: { type: { const: 'agent:thought' }, id: { type: 'string' } } }])
  const operations = doc.operations as Record<string, any>
  t.match(operations['receive.subscribe'], {
    action: 'receive',
    channel: { $ref: '#/channels/realtime' },
    messages: [{ $ref: '#/channels/realtime/messages/subscribe' }],
    reply: { messages: [{ $ref: '#/channels/realtime/messages/subscribed' }, {}, { $ref: '#/channels/realtime/messages/error' }] }
  })
  t.match(operations['send.event.hitl_request'], {
    action: 'send',
    messages: [{ $ref: '#/channels/realtime/messages/event.hitl_request' }]
  })
  t.notOk('reply' in operations['send.ready'])
  t.same(Object.keys(channel.messages).sort(), Object.keys(messages).sort(), 'the channel holds every message')
  t.same(
    ['publish', 'cancel', 'reply', 'stream', 'delta', 'hitlResolved'].map((key) => messages[key]?.name),
    ['publish', 'cancel', 'reply', 'stream', 'delta', 'hitl_resolved'],
    'the agent messages are there too'
  )
  t.match(messages.reply?.payload.properties, { room: { type: 'string' } }, 'a question is answered with its room')
})

t.test('GET <path>/asyncapi.json serves it when enabled, with the given info; 404 when not', async (t) => {
  const events = defineEvents({ ...agentEvents, 'invoice:paid': Type.Object({ invoiceId: Type.String() }) })
  const app = Fastify()
  await app.register(realtime, {
    jwt: { secret: SECRET },
    events,
    asyncapi: { title: 'Billing', version: '2.1.0', description: 'Invoices' }
  })
  t.teardown(() => app.close())
  const res = await app.inject({ method: 'GET', url: '/ws/asyncapi.json' })
  t.equal(res.statusCode, 200)
  const doc = res.json()
  t.same(doc.info, { title: 'Billing', version: '2.1.0', description: 'Invoices' })
  t.equal(doc.components.messages['event.invoice.paid'].name, 'invoice:paid')
  t.same(await problems(doc), [])

  const plain = await buildApp(t)
  t.equal((await plain.inject({ method: 'GET', url: '/ws/asyncapi.json' })).statusCode, 404, 'off by default')
  const rooted = Fastify()
  await rooted.register(realtime, { jwt: { secret: SECRET }, path: '/', asyncapi: true })
  t.teardown(() => rooted.close())
  t.equal((await rooted.inject({ method: 'GET', url: '/asyncapi.json' })).json().channels.realtime.address, '/')
})

t.test('an empty registry has no server request message, and still validates', async (t) => {
  const app = await buildApp(t, { events: defineEvents({}) })
  const doc = app.realtime.asyncapi()
  t.notOk('serverRequest' in doc.components.messages)
  t.same(await problems(doc), [])
})
