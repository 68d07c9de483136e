import {
  type Block,
  type ConversationRole,
  decodePageCursor,
  encodePageCursor,
  type ModerationView,
  type Report,
  type ReportStatus,
} from '@chat/events';
import type { ReadModelDb } from './database.js';
import type { ReportRow } from './tables/moderation.table.js';

// Read-model queries of moderation and blocking (issue 16).

const iso = (d: Date): string => d.toISOString();

const toReport = (r: ReportRow): Report => ({
  reportId: r.report_id,
  conversationId: r.conversation_id,
  messageId: r.message_id,
  messageSenderId: r.message_sender_id,
  reporterId: r.reporter_id,
  reason: r.reason,
  reportedAt: iso(r.reported_at),
  status: r.status,
  resolution:
    r.status === 'resolved' && r.action !== null && r.resolved_by !== null && r.resolved_at !== null
      ? { action: r.action, resolvedBy: r.resolved_by, resolvedAt: iso(r.resolved_at), note: r.note }
      : null,
});

/** The moderation queue: reports of one status, newest first, keyset-paged (ties by id). */
export const listReports = async (
  db: ReadModelDb,
  options: { status: ReportStatus; limit: number; cursor?: string | undefined },
): Promise<{ items: Report[]; nextCursor: string | null }> => {
  let query = db.selectFrom('reports').selectAll().where('status', '=', options.status);
  const cursor = options.cursor === undefined ? null : decodePageCursor(options.cursor);
  if (cursor) {
    query = query.where((eb) =>
      eb(eb.refTuple('reported_at', 'report_id'), '<', eb.tuple(new Date(cursor.at), cursor.id)),
    );
  }
  const rows = await query
    .orderBy('reported_at', 'desc')
    .orderBy('report_id', 'desc')
    .limit(options.limit + 1)
    .execute();
  const page = rows.slice(0, options.limit);
  const last = page.at(-1);
  return {
    items: page.map(toReport),
    nextCursor:
      rows.length > options.limit && last
        ? encodePageCursor({ at: iso(last.reported_at), id: last.report_id })
        : null,
  };
};

/** The users `userId` blocks, most recent first. */
export const listBlocks = async (db: ReadModelDb, userId: string): Promise<Block[]> => {
  const rows = await db
    .selectFrom('user_blocks')
    .select(['blocked_user_id', 'blocked_at'])
    .where('user_id', '=', userId)
    .orderBy('blocked_at', 'desc')
    .orderBy('blocked_user_id')
    .execute();
  return rows.map((r) => ({ userId: r.blocked_user_id, blockedAt: iso(r.blocked_at) }));
};

/** The subset of `otherUserIds` in a block with `userId`, either way round (presence is hidden then). */
export const usersInBlockWith = async (
  db: ReadModelDb,
  userId: string,
  otherUserIds: readonly string[],
): Promise<Set<string>> => {
  if (otherUserIds.length === 0) return new Set();
  const others = [...otherUserIds];
  const rows = await db
    .selectFrom('user_blocks')
    .select(['user_id', 'blocked_user_id'])
    .where((eb) =>
      eb.or([
        eb.and([eb('user_id', '=', userId), eb('blocked_user_id', 'in', others)]),
        eb.and([eb('blocked_user_id', '=', userId), eb('user_id', 'in', others)]),
      ]),
    )
    .execute();
  return new Set(rows.map((r) => (r.user_id === userId ? r.blocked_user_id : r.user_id)));
};

/** Every block that involves one of `userIds`, either way round (a gateway loads its users' blocks). */
export const blocksInvolving = async (
  db: ReadModelDb,
  userIds: readonly string[],
): Promise<{ userId: string; blockedUserId: string }[]> => {
  if (userIds.length === 0) return [];
  const ids = [...userIds];
  const rows = await db
    .selectFrom('user_blocks')
    .select(['user_id', 'blocked_user_id'])
    .where((eb) => eb.or([eb('user_id', 'in', ids), eb('blocked_user_id', 'in', ids)]))
    .execute();
  return rows.map((r) => ({ userId: r.user_id, blockedUserId: r.blocked_user_id }));
};

/**
 * Roles of a conversation's current members (in the member list's order) and its bans; undefined when
 * `userId` is not a member. Bans are shown to the owner and admins only.
 */
export const moderationView = async (
  db: ReadModelDb,
  conversationId: string,
  userId: string,
): Promise<ModerationView | undefined> => {
  const rows = await db
    .selectFrom('members as m')
    .innerJoin('conversations as c', 'c.conversation_id', 'm.conversation_id')
    .select(['m.user_id', 'm.role', 'c.created_by'])
    .where('m.conversation_id', '=', conversationId)
    .where('m.active', '=', true)
    .orderBy('m.joined_seq')
    .orderBy('m.ordinal')
    .orderBy('m.user_id')
    .execute();
  const roleOf = (r: (typeof rows)[number]): ConversationRole =>
    r.user_id === r.created_by ? 'owner' : r.role === 'admin' ? 'admin' : 'member';
  const me = rows.find((r) => r.user_id === userId);
  if (!me) return undefined;
  const members = rows.map((r) => ({ userId: r.user_id, role: roleOf(r) }));
  if (roleOf(me) === 'member') return { members, bans: [] };
  const bans = await db
    .selectFrom('conversation_bans')
    .selectAll()
    .where('conversation_id', '=', conversationId)
    .orderBy('seq')
    .execute();
  return {
    members,
    bans: bans.map((b) => ({
      userId: b.user_id,
      bannedBy: b.banned_by,
      bannedAt: iso(b.banned_at),
      seq: b.seq,
    })),
  };
};

/** Every moderation row of the read models, ordered: what a rebuild must reproduce exactly (tests). */
export const moderationSnapshot = async (db: ReadModelDb) => ({
  bans: await db
    .selectFrom('conversation_bans')
    .selectAll()
    .orderBy('conversation_id')
    .orderBy('user_id')
    .execute(),
  reports: await db.selectFrom('reports').selectAll().orderBy('report_id').execute(),
  user_blocks: await db
    .selectFrom('user_blocks')
    .selectAll()
    .orderBy('user_id')
    .orderBy('blocked_user_id')
    .execute(),
  roles: await db
    .selectFrom('members')
    .select(['conversation_id', 'user_id', 'role'])
    .where('role', 'is not', null)
    .orderBy('conversation_id')
    .orderBy('user_id')
    .execute(),
});
