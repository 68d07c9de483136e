import { type ReadModelDb, unreadCountsOfUsers } from '@chat/db';
import type { UserChannelMessage } from '@chat/events';
import { splitKey } from './state.js';

export type PublishUserMessage = (userId: string, message: UserChannelMessage) => void;

/**
 * After a batch commits, tells each affected user their new count for each changed conversation and
 * their new total. A message makes every member of its conversation "affected": that is O(members)
 * small NATS messages, computed by one query; the read-model writes stayed O(1).
 */
export const publishUnread = async (
  db: ReadModelDb,
  changes: { unreadConversations: ReadonlySet<string>; unreadPairs: ReadonlySet<string> },
  publish: PublishUserMessage,
): Promise<number> => {
  const pairs = new Map<string, Set<string>>();
  const add = (userId: string, conversationId: string) => {
    let set = pairs.get(userId);
    if (!set) {
      set = new Set();
      pairs.set(userId, set);
    }
    set.add(conversationId);
  };
  for (const key of changes.unreadPairs) {
    const [conversationId, userId] = splitKey(key);
    add(userId, conversationId);
  }
  if (changes.unreadConversations.size > 0) {
    const members = await db
      .selectFrom('members')
      .select(['conversation_id', 'user_id'])
      .where('conversation_id', 'in', [...changes.unreadConversations])
      .where('active', '=', true)
      .execute();
    for (const m of members) add(m.user_id, m.conversation_id);
  }
  if (pairs.size === 0) return 0;
  const counts = await unreadCountsOfUsers(db, [...pairs.keys()]);
  let sent = 0;
  for (const [userId, conversationIds] of pairs) {
    const perConversation = counts.get(userId);
    let total = 0;
    for (const n of perConversation?.values() ?? []) total += n;
    for (const conversationId of conversationIds) {
      publish(userId, {
        type: 'unread',
        conversationId,
        unreadCount: perConversation?.get(conversationId) ?? 0,
        total,
      });
      sent++;
    }
  }
  return sent;
};
