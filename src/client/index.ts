/**
 * `fastify-realtime/client`: a typed `realtime.v1` client for browsers and Node, plus the protocol's
 * constants and message types. It imports no schema library at run time.
 */
export type { EventData, EventOf, EventRegistry } from '../events.js'
export * from '../protocol/constants.js'
export type * from '../protocol/messages.js'
export {
  type ClientEvent,
  type ClientEventOf,
  type ClientOptions,
  type ClientQuestion,
  type ClientQuestionOf,
  type ClientState,
  type LiveState,
  type PresenceChange,
  type PresenceMember,
  type RealtimeClient,
  RealtimeClientError,
  type SubscribeInfo,
  type SubscribeOptions,
  type Subscription,
  type WebSocketConstructor,
  type WebSocketLike
} from './api.js'
export { type BackoffOptions, backoff } from './backoff.js'
export { createClient } from './client.js'
export type { StateListener } from './state.js'
