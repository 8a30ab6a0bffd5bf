// Without declaration merging, app.realtime is typed by the agentEvents preset.
import Fastify from 'fastify'
import realtime from '../../src/index.js'

const app = Fastify()
await app.register(realtime, { jwt: { secret: 'x'.repeat(32) } })
await app.realtime.emit('r', { type: 'hitl_request', data: { requestId: 'q', question: 'ok?', options: [{ id: 'y', label: 'Yes' }] } })
await app.realtime.emit('r', { type: 'error_notification', data: { severity: 'critical', message: 'down' } })
// @ts-expect-error not in the preset
await app.realtime.emit('r', { type: 'invoice:paid', data: { invoiceId: 'in_1' } })
// @ts-expect-error severity is an enum
await app.realtime.emit('r', { type: 'error_notification', data: { severity: 'fatal', message: 'down' } })
