import { type ReadModelDb, unreadCountsOfUsers } from '@chat/db';
import type { UserChannelMessage } from '@chat/events';
import { splitKey } from './state.js';

export type PublishUserMessage = (userId: string, message: UserChannelMessage) => void;

/**
 * After a batch commits, tells each user whose unread count changed for a reason their client cannot
 * see in its event stream (API.md §4 v1.1) their new count for each such conversation and their new
 * total: the reader of a MarkRead (every device of theirs), and for a deleted message each member who
 * had not read it. A new message publishes nothing (clients count it themselves), so the live path
 * costs no message per recipient; a deletion costs one per member who had it unread.
 */
export const publishUnread = async (
  db: ReadModelDb,
  changes: { unreadPairs: ReadonlySet<string>; deletedUnread: ReadonlyMap<string, number> },
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
  if (changes.deletedUnread.size > 0) {
    // The sender's watermark is at or past their own message, and later joiners' past it too.
    const rows = await db
      .selectFrom('members')
      .select(['conversation_id', 'user_id'])
      .where('active', '=', true)
      .where((eb) =>
        eb.or(
          [...changes.deletedUnread].map(([conversationId, seq]) =>
            eb.and([eb('conversation_id', '=', conversationId), eb('read_seq', '<', seq)]),
          ),
        ),
      )
      .execute();
    for (const m of rows) add(m.user_id, m.conversation_id);
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
