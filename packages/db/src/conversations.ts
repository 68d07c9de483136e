import {
  type Conversation,
  decodePageCursor,
  defaultNotificationLevel,
  encodePageCursor,
  type PageCursor,
} from '@chat/events';
import { type ExpressionBuilder, sql } from 'kysely';
import type { Database, ReadModelDb } from './database.js';

export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

/** The list's cursor in the one format of every list (@chat/events); a foreign one throws. */
const decodeCursor = (cursor: string): PageCursor => {
  const decoded = decodePageCursor(cursor);
  if (!decoded) throw new InvalidCursorError('cursor is not one this server returned');
  return decoded;
};

type Eb = ExpressionBuilder<Database & { m: Database['members']; c: Database['conversations'] }, 'm' | 'c'>;

/** The conversation columns plus the caller's member row, its active member list and deleted-unread count. */
const conversationsOf = (db: ReadModelDb, userId: string) =>
  db
    .selectFrom('members as m')
    .innerJoin('conversations as c', 'c.conversation_id', 'm.conversation_id')
    .selectAll('c')
    .select(['m.read_seq', 'm.read_msg_index', 'm.muted_until', 'm.notification_level'])
    .select((eb: Eb) => [
      eb
        .selectFrom('members as x')
        .select(sql<string[]>`array_agg(x.user_id ORDER BY x.joined_seq, x.ordinal, x.user_id)`.as('ids'))
        .whereRef('x.conversation_id', '=', 'c.conversation_id')
        .where('x.active', '=', true)
        .as('member_ids'),
      eb
        .selectFrom('members as a')
        .select(sql<string[]>`array_agg(a.user_id ORDER BY a.user_id COLLATE "C")`.as('ids'))
        .whereRef('a.conversation_id', '=', 'c.conversation_id')
        .where('a.active', '=', true)
        .where('a.role', '=', 'admin')
        .as('admin_ids'),
      eb
        .selectFrom('messages as d')
        .select(sql<string>`count(*)`.as('n'))
        .whereRef('d.conversation_id', '=', 'c.conversation_id')
        .where('d.deleted', '=', true)
        .whereRef('d.seq', '>', 'm.read_seq')
        .as('deleted_unread'),
    ])
    .where('m.user_id', '=', userId)
    .where('m.active', '=', true);

type ConversationQueryRow = Awaited<ReturnType<ReturnType<typeof conversationsOf>['execute']>>[number];

const iso = (d: Date | string): string => (d instanceof Date ? d : new Date(d)).toISOString();

/**
 * Unread = messages above the watermark minus deleted ones above it. The caller's own messages are
 * never above their watermark: sending moves it to the message.
 */
const toConversation = (r: ConversationQueryRow): Conversation => ({
  conversationId: r.conversation_id,
  kind: r.kind,
  title: r.title,
  createdBy: r.created_by,
  members: r.member_ids ?? [],
  createdAt: iso(r.created_at),
  lastActivityAt: iso(r.last_activity_at),
  lastSeq: r.last_seq,
  readSeq: r.read_seq,
  unreadCount: Math.max(0, r.message_count - r.read_msg_index - Number(r.deleted_unread ?? 0)),
  mutedUntil: r.muted_until ? iso(r.muted_until) : null,
  notificationLevel: r.notification_level ?? defaultNotificationLevel(r.kind),
  lastMessage:
    r.last_message_id === null
      ? null
      : {
          messageId: r.last_message_id,
          senderId: r.last_message_sender ?? '',
          // Only an erasure leaves a message that is not deleted without a preview.
          preview: r.last_message_deleted === true ? (r.last_message_preview ?? '') : r.last_message_preview,
          sentAt: iso(r.last_message_sent_at ?? r.last_activity_at),
          seq: r.last_message_seq ?? 0,
          deleted: r.last_message_deleted === true,
          erased: r.last_message_deleted !== true && r.last_message_preview === null,
        },
  admins: r.admin_ids ?? [],
});

/** The caller's conversations, newest activity first, ties by id descending; keyset-paged. */
export const listConversations = async (
  db: ReadModelDb,
  userId: string,
  options: { limit: number; cursor?: string | undefined },
): Promise<{ items: Conversation[]; nextCursor: string | null }> => {
  let query = conversationsOf(db, userId);
  if (options.cursor !== undefined) {
    const c = decodeCursor(options.cursor);
    query = query.where((eb) =>
      eb(eb.refTuple('c.last_activity_at', 'c.conversation_id'), '<', eb.tuple(new Date(c.at), c.id)),
    );
  }
  const rows = await query
    .orderBy('c.last_activity_at', 'desc')
    .orderBy('c.conversation_id', 'desc')
    .limit(options.limit + 1)
    .execute();
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map(toConversation),
    nextCursor:
      rows.length > options.limit && last
        ? encodePageCursor({ at: iso(last.last_activity_at), id: last.conversation_id })
        : null,
  };
};

/** One conversation as the caller sees it; undefined when it does not exist or the caller is no member. */
export const getConversation = async (
  db: ReadModelDb,
  userId: string,
  conversationId: string,
): Promise<Conversation | undefined> => {
  const row = await conversationsOf(db, userId)
    .where('c.conversation_id', '=', conversationId)
    .executeTakeFirst();
  return row ? toConversation(row) : undefined;
};

/** `{total, conversations}`: the sum of unread counts and how many conversations have any. */
export const unreadSummary = async (
  db: ReadModelDb,
  userId: string,
): Promise<{ total: number; conversations: number }> => {
  const counts = await unreadCountsOfUsers(db, [userId]);
  let total = 0;
  let conversations = 0;
  for (const n of counts.get(userId)?.values() ?? []) {
    total += n;
    if (n > 0) conversations++;
  }
  return { total, conversations };
};

/** Per user, the unread count of each conversation they are a member of. */
export const unreadCountsOfUsers = async (
  db: ReadModelDb,
  userIds: readonly string[],
): Promise<Map<string, Map<string, number>>> => {
  const out = new Map<string, Map<string, number>>();
  if (userIds.length === 0) return out;
  const rows = await db
    .selectFrom('members as m')
    .innerJoin('conversations as c', 'c.conversation_id', 'm.conversation_id')
    .select(['m.user_id', 'm.conversation_id', 'm.read_msg_index', 'c.message_count'])
    .select((eb) =>
      eb
        .selectFrom('messages as d')
        .select(sql<string>`count(*)`.as('n'))
        .whereRef('d.conversation_id', '=', 'c.conversation_id')
        .where('d.deleted', '=', true)
        .whereRef('d.seq', '>', 'm.read_seq')
        .as('deleted_unread'),
    )
    .where('m.user_id', 'in', [...userIds])
    .where('m.active', '=', true)
    .execute();
  for (const r of rows) {
    let perUser = out.get(r.user_id);
    if (!perUser) {
      perUser = new Map();
      out.set(r.user_id, perUser);
    }
    perUser.set(
      r.conversation_id,
      Math.max(0, r.message_count - r.read_msg_index - Number(r.deleted_unread ?? 0)),
    );
  }
  return out;
};
