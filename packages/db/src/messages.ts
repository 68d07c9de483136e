import { type Message, REACTION_USERS_SHOWN, type ReactionSummary } from '@chat/events';
import { sql } from 'kysely';
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
  const reactions = await reactionsOf(
    db,
    conversationId,
    page.filter((r) => !r.deleted).map((r) => r.message_id),
  );
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
      deletedBy: r.deleted ? (r.deleted_by ?? r.sender_id) : null,
      reactions: reactions.get(r.message_id) ?? [],
    })),
  };
};

/**
 * The reactions of these messages, aggregated in Postgres: per message, each reaction with its count and
 * its first REACTION_USERS_SHOWN users by time, ordered by first use.
 */
const reactionsOf = async (
  db: ReadModelDb,
  conversationId: string,
  messageIds: readonly string[],
): Promise<Map<string, ReactionSummary[]>> => {
  const out = new Map<string, ReactionSummary[]>();
  if (messageIds.length === 0) return out;
  const rows = await db
    .selectFrom('message_reactions')
    .select(['message_id', 'reaction'])
    .select([
      sql<number>`count(*)::int`.as('count'),
      sql<number>`min(seq)`.as('first'),
      sql<string[]>`(array_agg(user_id ORDER BY seq))[1:${sql.lit(REACTION_USERS_SHOWN)}]`.as('user_ids'),
    ])
    .where('conversation_id', '=', conversationId)
    .where('message_id', 'in', [...messageIds])
    .groupBy(['message_id', 'reaction'])
    .orderBy('first')
    .execute();
  for (const r of rows) {
    const list = out.get(r.message_id) ?? [];
    list.push({ reaction: r.reaction, count: r.count, userIds: r.user_ids });
    out.set(r.message_id, list);
  }
  return out;
};
