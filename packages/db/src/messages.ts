import { type Message, REACTION_USERS_SHOWN, type ReactionSummary } from '@chat/events';
import { type SelectQueryBuilder, sql } from 'kysely';
import type { Database, ReadModelDb } from './database.js';
import type { MessageRow } from './tables/messages.table.js';

/** One page of a conversation's messages (see `pageOf`), thread replies included unless told otherwise. */
export const listMessages = async (
  db: ReadModelDb,
  conversationId: string,
  options: {
    before?: number | undefined;
    after?: number | undefined;
    limit: number;
    /** false: thread replies are left out (default: every message). */
    includeThreads?: boolean | undefined;
  },
): Promise<{ items: Message[]; hasMore: boolean }> => {
  let query = db
    .selectFrom('messages')
    .select(MESSAGE_ROW_COLUMNS)
    .where('conversation_id', '=', conversationId);
  if (options.includeThreads === false) query = query.where('thread_root_id', 'is', null);
  return pageOf(db, conversationId, query, options);
};

/** The columns a Message is made of (not the search vector). */
export const MESSAGE_ROW_COLUMNS = [
  'conversation_id',
  'seq',
  'message_id',
  'sender_id',
  'body',
  'reply_to',
  'sent_at',
  'edited_at',
  'deleted',
  'deleted_by',
  'thread_root_id',
  'reply_count',
  'last_reply_at',
  'thread_participants',
] as const;

type MessageQuery = SelectQueryBuilder<
  Database,
  'messages',
  Pick<MessageRow, (typeof MESSAGE_ROW_COLUMNS)[number]>
>;

/**
 * One page of `query`'s messages in ascending seq. `before` pages backwards, `after` forwards, neither
 * gives the newest page. `hasMore`: more exist beyond the page in its paging direction.
 */
export const pageOf = async (
  db: ReadModelDb,
  conversationId: string,
  query: MessageQuery,
  options: { before?: number | undefined; after?: number | undefined; limit: number },
): Promise<{ items: Message[]; hasMore: boolean }> => {
  const forwards = options.after !== undefined;
  let q = query;
  if (options.after !== undefined) q = q.where('seq', '>', options.after);
  if (options.before !== undefined) q = q.where('seq', '<', options.before);
  const rows = await q
    .orderBy('seq', forwards ? 'asc' : 'desc')
    .limit(options.limit + 1)
    .execute();
  const hasMore = rows.length > options.limit;
  const page = rows.slice(0, options.limit);
  if (!forwards) page.reverse();
  return { hasMore, items: await messagesOf(db, conversationId, page) };
};

/** Messages as the API shows them, with their reactions, from rows of one conversation. */
export const messagesOf = async (
  db: ReadModelDb,
  conversationId: string,
  page: readonly Pick<MessageRow, (typeof MESSAGE_ROW_COLUMNS)[number]>[],
): Promise<Message[]> => {
  const reactions = await reactionsOf(
    db,
    conversationId,
    page.filter((r) => !r.deleted).map((r) => r.message_id),
  );
  return page.map((r) => ({
    messageId: r.message_id,
    conversationId: r.conversation_id,
    seq: r.seq,
    senderId: r.sender_id,
    body: r.deleted ? null : r.body,
    // Only an erasure of its sender leaves a message that is not deleted without a body.
    erased: !r.deleted && r.body === null,
    replyTo: r.reply_to,
    sentAt: r.sent_at.toISOString(),
    editedAt: r.edited_at ? r.edited_at.toISOString() : null,
    deleted: r.deleted,
    deletedBy: r.deleted ? (r.deleted_by ?? r.sender_id) : null,
    reactions: reactions.get(r.message_id) ?? [],
    threadRootId: r.thread_root_id,
    replyCount: r.reply_count,
    lastReplyAt: r.last_reply_at ? r.last_reply_at.toISOString() : null,
    threadParticipantIds: r.thread_participants,
  }));
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
