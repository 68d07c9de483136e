export type { NotificationLevel, ReactionSummary as MessageReaction } from '@chat/events';
export { backoffDelay } from './backoff.js';
export { BlockList } from './blocks.js';
export {
  ChatClient,
  type ChatClientEvents,
  type ChatClientOptions,
  ChatCommandError,
  type ConnectionState,
  type TokenSource,
  type WebSocketConstructor,
  type WebSocketLike,
} from './client.js';
export { Emitter } from './emitter.js';
export {
  type ApiResponse,
  type BodyOf,
  ChatApi,
  ChatApiError,
  type ChatApiOptions,
  type ParamsOf,
  type QueryOf,
} from './http.js';
export { SeqTracker, type SeqVerdict } from './sequence.js';
export { UnreadCounts, type UnreadEntry, type UnreadSeed, type UnreadVerdict } from './unread.js';
export {
  type UnreadChange,
  UnreadTracker,
  type UnreadTrackerEvents,
  type UnreadTrackerOptions,
} from './unread-tracker.js';
export { randomUuid } from './uuid.js';
