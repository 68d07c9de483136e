export { backoffDelay } from './backoff.js';
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
export { SeqTracker, type SeqVerdict } from './sequence.js';
