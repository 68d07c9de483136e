import { createHash, randomUUID } from 'node:crypto';
import type { ChatEvent } from '@chat/events';

/** Namespace of every name-based UUID this service derives (a fixed random UUID). */
const CHAT_NAMESPACE = Buffer.from('8d3c1f0a6b2e4f7c9a5d0e1b2c3f4a5b', 'hex');

/** RFC 4122 version-5 (SHA-1, name-based) UUID: the same name always gives the same id. */
export const uuidV5 = (name: string): string => {
  const hash = createHash('sha1').update(CHAT_NAMESPACE).update(name, 'utf8').digest();
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50;
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};

/** A direct conversation's id depends only on its unordered pair of users (API.md §2.1). */
export const directConversationId = (a: string, b: string): string =>
  uuidV5(`direct\n${[a, b].sort().join('\n')}`);

/**
 * Event ids are derived from the command's own key where a retry must not duplicate the event: the
 * store treats an existing id as already appended. Other events are guarded by expected revisions.
 */
export const eventId = (event: ChatEvent): string => {
  switch (event.type) {
    case 'ConversationStarted':
      return uuidV5(`started\n${event.data.conversationId}`);
    case 'MessageSent':
      return uuidV5(`sent\n${event.data.conversationId}\n${event.data.messageId}`);
    case 'MessageDeleted':
      return uuidV5(`deleted\n${event.data.conversationId}\n${event.data.messageId}`);
    case 'UserErased':
      return uuidV5(`erased\n${event.data.userId}`);
    default:
      return randomUUID();
  }
};
