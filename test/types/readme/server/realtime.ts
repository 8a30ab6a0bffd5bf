// The server module the README's client snippet imports its registry types from.
import { agentEvents, defineEvents, defineMessages, Type } from 'fastify-realtime'

export const events = defineEvents({
  ...agentEvents,
  'invoice:paid': Type.Object({ invoiceId: Type.String(), amount: Type.Number() }),
  typing: Type.Object({ typing: Type.Boolean() })
})

export const messages = defineMessages({
  'run:start': { data: Type.Object({ prompt: Type.String({ maxLength: 2000 }) }), ack: Type.Object({ runId: Type.String() }) }
})
