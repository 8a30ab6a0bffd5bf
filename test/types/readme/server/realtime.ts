// The server module the README's client snippet imports its registry types from.
import { agentEvents, defineEvents, Type } from 'fastify-realtime'

export const events = defineEvents({
  ...agentEvents,
  'invoice:paid': Type.Object({ invoiceId: Type.String(), amount: Type.Number() }),
  typing: Type.Object({ typing: Type.Boolean() })
})

export const messages = { 'run:start': Type.Object({ prompt: Type.String({ maxLength: 2000 }) }) }
