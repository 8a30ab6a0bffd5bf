export type { Static, TSchema } from '@sinclair/typebox'
export { Type } from '@sinclair/typebox'
export type {
  Adapter,
  AdapterHandler,
  HistoryPolicy,
  HistoryResult,
  Outgoing,
  PresenceChange,
  PresenceEntry,
  PresenceMember,
  Publication,
  StreamPosition
} from './adapters/adapter.js'
export { memoryAdapter } from './adapters/memory.js'
export type { AsyncApiDocument, AsyncApiInfo } from './asyncapi.js'
export {
  FST_REALTIME_ADAPTER_FAILED,
  FST_REALTIME_AUTHENTICATE_FAILED,
  FST_REALTIME_BAD_SUBPROTOCOL,
  FST_REALTIME_CLOSING,
  FST_REALTIME_FORBIDDEN_ORIGIN,
  FST_REALTIME_INVALID_EVENT,
  FST_REALTIME_INVALID_HANDLER,
  FST_REALTIME_INVALID_OPTION,
  FST_REALTIME_INVALID_REGISTRY,
  FST_REALTIME_NO_TARGET,
  FST_REALTIME_REGISTRATION_ORDER,
  FST_REALTIME_REQUEST_DISCONNECTED,
  FST_REALTIME_REQUEST_REJECTED,
  FST_REALTIME_REQUEST_TIMEOUT,
  FST_REALTIME_RUN_CANCELLED,
  FST_REALTIME_SERVER_FULL,
  FST_REALTIME_SUBSCRIPTIONS_FAILED,
  FST_REALTIME_TOO_MANY_CONNECTIONS,
  FST_REALTIME_UNAUTHORIZED,
  RealtimeError,
  type RealtimeErrorClass,
  type RealtimeFastifyError
} from './errors.js'
export type { AckOf, AgentEvents, EventData, EventOf, EventRegistry, MessageRegistry, MessageSpec } from './events.js'
export { agentEvents, defineEvents, defineMessages } from './events.js'
export type {
  AuthenticatedUser,
  AuthorizeContext,
  JwtSecretFunction,
  Limits,
  PresenceInfoContext,
  RealtimeOptions,
  ServerApiOptions,
  SnapshotContext
} from './options.js'
export type { OriginMatcher, OriginOption } from './origins.js'
export { default, fastifyRealtime, fastifyRealtime as realtime } from './plugin.js'
export * from './protocol/constants.js'
export type * from './protocol/messages.js'
export type {
  AskOptions,
  EmitOptions,
  EmitResult,
  EmitTarget,
  Handler,
  HandlerContext,
  JoinOptions,
  JoinTarget,
  RealtimeApi,
  RealtimeConnection,
  RealtimeRegistry,
  RealtimeStats,
  RealtimeUser,
  RegisteredEvents,
  RequestOptions,
  RunTarget,
  StreamHandle,
  StreamOptions
} from './types.js'
