import { createHash } from 'node:crypto';

// A fixed namespace, so the same message and recipient always give the same id (UUIDv5 construction).
const NAMESPACE = Buffer.from('5f0c9a1e6c4b4f7d9a3e2b8d1c7e4a60', 'hex');

/**
 * UUIDv5-style id of the notification of one message for one recipient (and, for a record about
 * something done to the message, what was done: `detail`). The conversation id is part of the name
 * because message ids are client idempotency keys scoped to their conversation.
 */
export const notificationIdFor = (
  conversationId: string,
  messageId: string,
  recipientId: string,
  ...detail: string[]
): string => {
  const name = [conversationId.toLowerCase(), messageId.toLowerCase(), recipientId, ...detail].join('\n');
  const hash = createHash('sha1').update(NAMESPACE).update(name).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
