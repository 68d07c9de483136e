import { sql } from 'kysely';
import { READ_MODEL_CHECKPOINT, type ReadModelDb } from './database.js';
import { START_POSITION_TEXT } from './positions.js';

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

export type MembershipsAtCheckpoint = {
  /** The position the read model has applied up to. */
  checkpoint: string;
  /** The active memberships of the asked users, with the seq of the event that made each one. */
  members: { userId: string; conversationId: string; joinedSeq: number }[];
};

/**
 * The read model's checkpoint and the current memberships of `userIds`, in one statement and so in one
 * snapshot: the memberships are exactly those at the checkpoint (the projection writes both in one
 * transaction). A gateway then adds the membership events after the checkpoint from the log.
 */
export const membershipsAtCheckpoint = async (
  db: ReadModelDb,
  userIds: readonly string[],
): Promise<MembershipsAtCheckpoint> => {
  // One row per membership, each with the checkpoint; one row of nulls but the checkpoint when there
  // are none. `members` goes through the builder so that it is qualified by the handle's schema.
  const rows = await db
    .selectFrom(sql<{ one: number }>`(SELECT 1 AS one)`.as('one'))
    .leftJoin('members as m', (join) =>
      join.on(sql<boolean>`m.user_id = ANY(${[...userIds]}::text[])`).on('m.active', '=', true),
    )
    .select([
      sql<
        string | null
      >`(SELECT position FROM consumers.checkpoints WHERE name = ${READ_MODEL_CHECKPOINT})`.as('position'),
      'm.user_id',
      'm.conversation_id',
      'm.joined_seq',
    ])
    .execute();
  const members: MembershipsAtCheckpoint['members'] = [];
  for (const r of rows) {
    if (r.user_id !== null && r.conversation_id !== null && r.joined_seq !== null) {
      members.push({ userId: r.user_id, conversationId: r.conversation_id, joinedSeq: r.joined_seq });
    }
  }
  return { checkpoint: rows[0]?.position ?? START_POSITION_TEXT, members };
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
