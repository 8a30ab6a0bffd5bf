/**
 * `fastify-realtime/client`: a typed `realtime.v1` client for browsers and Node, plus the protocol's
 * constants and message types. It imports no schema library at run time.
 */
export type { AckOf, EventData, EventOf, EventRegistry, MessageRegistry, MessageSpec } from '../events.js'
export * from '../protocol/constants.js'
export type * from '../protocol/messages.js'
export {
  type ClientEvent,
  type ClientEventOf,
  type ClientOptions,
  type ClientQuestion,
  type ClientQuestionOf,
  type ClientState,
  type CloseInfo,
  type ConnectionError,
  type MessageAck,
  type MessageData,
  type Position,
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
export type { Link, LinkEvents, Refusal, Transport } from './transport.js'
