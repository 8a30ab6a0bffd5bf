/**
 * `fastify-realtime/client`: what a browser or Node client needs to speak `realtime.v1`.
 * The protocol constants and message types; the connecting client builds on them.
 */

export type { EventData, EventOf, EventRegistry } from '../events.js'
export * from '../protocol/constants.js'
export type * from '../protocol/messages.js'
