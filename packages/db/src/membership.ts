import type { ReadModelDb } from './database.js';

/** Ids of the conversations `userId` is currently a member of. */
export const conversationIdsOfUser = async (db: ReadModelDb, userId: string): Promise<string[]> => {
  const rows = await db
    .selectFrom('members')
    .select('conversation_id')
    .where('user_id', '=', userId)
    .where('active', '=', true)
    .execute();
  return rows.map((r) => r.conversation_id);
};

/** The subset of `otherUserIds` that currently share at least one conversation with `userId`. */
export const usersSharingConversation = async (
  db: ReadModelDb,
  userId: string,
  otherUserIds: readonly string[],
): Promise<Set<string>> => {
  if (otherUserIds.length === 0) return new Set();
  const rows = await db
    .selectFrom('members as me')
    .innerJoin('members as other', 'other.conversation_id', 'me.conversation_id')
    .select('other.user_id')
    .distinct()
    .where('me.user_id', '=', userId)
    .where('me.active', '=', true)
    .where('other.active', '=', true)
    .where('other.user_id', 'in', [...otherUserIds])
    .execute();
  return new Set(rows.map((r) => r.user_id));
};

export const isMember = async (db: ReadModelDb, conversationId: string, userId: string): Promise<boolean> => {
  const row = await db
    .selectFrom('members')
    .select('active')
    .where('conversation_id', '=', conversationId)
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return row?.active === true;
};
