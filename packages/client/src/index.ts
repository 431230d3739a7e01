/**
 * `@parley/client`: the TypeScript SDK of Parley, for browsers and Node 20+.
 * Start with {@link ParleyClient}; the building blocks are exported for custom clients.
 */
export { ParleyClient, type ParleyClientOptions, type ParleyClientEvents, type DeliveryInfo, type ReadReceipt } from './client';
export {
  Connection,
  type AuthTransport,
  type ConnectionHandlers,
  type ConnectionOptions,
  type ConnectionState,
  type ConnectionStateChange,
} from './connection';
export { RestClient } from './rest-client';
export { HttpClient, type HttpClientOptions, type HttpRequest } from './http';
export { TokenManager, type AccessClaims, type TokenManagerOptions } from './token-manager';
export { SyncEngine, type SyncEngineCallbacks, type SyncEngineOptions, type SyncStats } from './sync-engine';
export { MemorySyncStateStore, type ConversationSyncState, type SyncStateStore } from './sync-store';
export {
  OrderedDelivery,
  type Delivered,
  type DeliverySource,
  type OfferOutcome,
  type OrderedDeliveryOptions,
} from './ordered-delivery';
export { Outbox, type OutboxConnection, type OutboxOptions } from './outbox';
export { Backoff, backoffDelay, DEFAULT_BACKOFF, validateBackoff, type BackoffOptions } from './backoff';
export { closeAction, type CloseAction } from './close-policy';
export {
  ParleyClientError,
  isParleyClientError,
  isLoginRequired,
  retryPolicyOf,
  type ClientErrorCode,
  type ParleyClientErrorInit,
  type RetryPolicy,
} from './errors';
export { TypedEmitter, type EventMap, type Listener } from './emitter';
export { parseServerFrame, type ClientRequest, type HelloFrame, type ReplyFrame, type ServerFrameOf } from './frames';
export type { FetchInitLike, FetchLike, FetchResponseLike, WebSocketConstructor, WebSocketLike } from './platform';
export type {
  AuthResponse,
  ConversationSummary,
  Message,
  ReadState,
  SyncResponse,
  Tokens,
} from '@parley/protocol';
