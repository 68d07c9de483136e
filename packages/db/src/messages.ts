import type { Message } from '@chat/events';
import type { ReadModelDb } from './database.js';

/**
 * One page of a conversation's messages in ascending seq. `before` pages backwards, `after` forwards,
 * neither gives the newest page. `hasMore`: more exist beyond the page in its paging direction.
 */
export const listMessages = async (
  db: ReadModelDb,
  conversationId: string,
  options: { before?: number | undefined; after?: number | undefined; limit: number },
): Promise<{ items: Message[]; hasMore: boolean }> => {
  let query = db.selectFrom('messages').selectAll().where('conversation_id', '=', conversationId);
  const forwards = options.after !== undefined;
  if (options.after !== undefined) query = query.where('seq', '>', options.after);
  if (options.before !== undefined) query = query.where('seq', '<', options.before);
  const rows = await query
    .orderBy('seq', forwards ? 'asc' : 'desc')
    .limit(options.limit + 1)
    .execute();
  const hasMore = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  if (!forwards) page.reverse();
  return {
    hasMore,
    items: page.map((r) => ({
      messageId: r.message_id,
      conversationId: r.conversation_id,
      seq: r.seq,
      senderId: r.sender_id,
      body: r.deleted ? null : r.body,
      replyTo: r.reply_to,
      sentAt: r.sent_at.toISOString(),
      editedAt: r.edited_at ? r.edited_at.toISOString() : null,
      deleted: r.deleted,
    })),
  };
};
