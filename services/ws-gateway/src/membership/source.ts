import { READ_MODEL_CHECKPOINT, type ReadModelDb, START_POSITION_TEXT } from '@chat/db';
import { type EventStore, START_POSITION } from '@chat/eventstore';
import { sql } from 'kysely';
import type { Block, Membership, MembershipSource } from '../hub/hub.js';
import { MembershipTail } from './tail.js';

/** One row of `snapshotOf`: the checkpoint (`c`), a membership (`m`) or a block (`b`). */
type Kind = 'c' | 'm' | 'b';
type SnapshotRow = { kind: Kind; a: string | null; b: string | null; seq: number | null };
/** Stands for the asked ids in the compiled statement (found by identity). */
const ASKED: readonly string[] = [];

/**
 * The read model's checkpoint, the active memberships of the asked users (with the seq of the event
 * that made each) and the blocks they are in, either way — one statement, so one snapshot: exactly the
 * state at the checkpoint (the projection writes them and the checkpoint in one transaction). The ids
 * go as one array parameter (`= ANY`), so every burst size is the same statement for Postgres to parse
 * and plan: an `IN ($1, …, $n)` list made each size a statement of its own. The tables go through the
 * builder so that they are qualified by the handle's schema; the statement is built and compiled once
 * per handle (kysely's builder and plugins cost more than the statement's execution per burst) and run
 * with each burst's ids in place of `ASKED`.
 */
const snapshotStatement = (db: ReadModelDb) => {
  const ids = sql<string[]>`(SELECT ids FROM asked)::text[]`;
  const compiled = db
    .with('asked', (qb) => qb.selectNoFrom(sql<string[]>`${ASKED}::text[]`.as('ids')))
    .selectNoFrom([
      sql<Kind>`'c'`.as('kind'),
      sql<
        string | null
      >`(SELECT position FROM consumers.checkpoints WHERE name = ${READ_MODEL_CHECKPOINT})`.as('a'),
      sql<string | null>`NULL::text`.as('b'),
      sql<number | null>`NULL::int`.as('seq'),
    ])
    .unionAll(
      db
        .selectFrom('members as m')
        .select([
          sql<Kind>`'m'`.as('kind'),
          'm.user_id as a',
          'm.conversation_id as b',
          sql<number | null>`m.joined_seq`.as('seq'),
        ])
        .where(sql<boolean>`m.user_id = ANY(${ids})`)
        .where('m.active', '=', true),
    )
    .unionAll(
      db
        .selectFrom('user_blocks as ub')
        .select([
          sql<Kind>`'b'`.as('kind'),
          'ub.user_id as a',
          'ub.blocked_user_id as b',
          sql<number | null>`NULL::int`.as('seq'),
        ])
        .where(sql<boolean>`ub.user_id = ANY(${ids}) OR ub.blocked_user_id = ANY(${ids})`),
    )
    .compile();
  if (compiled.parameters.filter((p) => p === ASKED).length !== 1) {
    throw new Error('the snapshot statement must take the ids exactly once');
  }
  return async (userIds: readonly string[]): Promise<SnapshotRow[]> => {
    const parameters = compiled.parameters.map((p) => (p === ASKED ? userIds : p));
    const result = await db.executeQuery<SnapshotRow>({ ...compiled, parameters });
    return result.rows;
  };
};

/**
 * The users' conversations as of the log head: the read model's memberships, blocks and the checkpoint
 * they are at (one statement, so one snapshot), then the membership and block events between that
 * checkpoint and the head from the gateway's shared `MembershipTail`, applied in log order. The result
 * is as of max(checkpoint, head). The hub registered the users before asking, and both reads start
 * after that (together: neither needs the other, and either may come out ahead): a membership event the
 * relay publishes later reaches the hub on the user subject; one published earlier is at or below the
 * head read here. So a conversation created a moment before the connect is not missed, however far the
 * projector lags. One call serves a whole connect burst (two statements, one tail read).
 */
export const readModelMembership = (db: ReadModelDb, store: EventStore): MembershipSource => {
  const tail = new MembershipTail(store, START_POSITION);
  const snapshotOf = snapshotStatement(db);
  return {
    async membershipsOf(userIds) {
      const [head, rows] = await Promise.all([store.headPosition(), snapshotOf(userIds)]);
      let checkpoint = START_POSITION_TEXT;
      const pairs = new Map<string, { userId: string; blockedUserId: string }>();
      const byUser = new Map<string, Map<string, number>>();
      const of = (userId: string) => {
        let m = byUser.get(userId);
        if (!m) {
          m = new Map();
          byUser.set(userId, m);
        }
        return m;
      };
      for (const r of rows) {
        if (r.kind === 'c') checkpoint = r.a ?? checkpoint;
        else if (r.a !== null && r.b !== null) {
          if (r.kind === 'b') pairs.set(`${r.a}\n${r.b}`, { userId: r.a, blockedUserId: r.b });
          else if (r.seq !== null) of(r.a).set(r.b, r.seq);
        }
      }
      const asked = new Set(userIds);
      const changes = await tail.since(checkpoint, head);
      if (changes.length > 0) {
        for (const change of changes) {
          if (change.position > head) break;
          if (change.block) {
            const { userId, blockedUserId, blocked } = change.block;
            const key = `${userId}\n${blockedUserId}`;
            if (!blocked) pairs.delete(key);
            else if (asked.has(userId) || asked.has(blockedUserId)) pairs.set(key, { userId, blockedUserId });
            continue;
          }
          for (const userId of change.joined) {
            if (asked.has(userId)) of(userId).set(change.conversationId, change.seq);
          }
          if (change.left !== null && asked.has(change.left)) of(change.left).delete(change.conversationId);
        }
      }
      const memberships = new Map<string, Membership[]>();
      for (const [userId, conversations] of byUser) {
        if (conversations.size === 0) continue;
        memberships.set(
          userId,
          Array.from(conversations, ([conversationId, seq]) => ({ conversationId, seq })),
        );
      }
      const blocks = new Map<string, Block[]>();
      for (const b of pairs.values()) {
        const sides: [string, Block][] = [
          [b.userId, { otherUserId: b.blockedUserId, blocking: true }],
          [b.blockedUserId, { otherUserId: b.userId, blocking: false }],
        ];
        for (const [userId, block] of sides) {
          if (!asked.has(userId)) continue;
          const list = blocks.get(userId);
          if (list) list.push(block);
          else blocks.set(userId, [block]);
        }
      }
      // biome-ignore lint/complexity/useMathMinMax: positions are strings (fixed-width hex)
      const position = checkpoint > head ? checkpoint : head;
      return { position, memberships, blocks };
    },
  };
};
