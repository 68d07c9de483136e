import { randomUUID } from 'node:crypto';
import { createReadModelDb, migrateReadModels, READ_MODEL_CHECKPOINT } from '@chat/db';
import {
  createPostgresEventStore,
  migrateEventStore,
  type NewEvent,
  type PostgresEventStore,
} from '@chat/eventstore';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelMembership } from '../src/membership/source.js';

// The connect-time membership read: the read model's memberships and its checkpoint must come from one
// snapshot, or the log tail is applied to memberships it does not belong to. Here the read model moves
// between two consistent states, each written in one transaction as the projector writes them — the
// later one first, then the earlier one, as when a rebuilt schema a little behind is swapped in — while
// connects read it.

let database: TestDatabase;
let store: PostgresEventStore;
let pool: pg.Pool;
const conversationId = randomUUID();
/** Log positions of alice starting the conversation, bob joining, bob leaving. */
const at: string[] = [];

const event = (type: string, data: Record<string, unknown>): NewEvent => ({
  id: randomUUID(),
  type,
  data: { conversationId, ...data },
  metadata: { userId: 'alice', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
});

/** The read model as the projector leaves it after the event at `at[upTo]`. */
const project = async (client: pg.PoolClient, upTo: 1 | 2) => {
  await client.query('BEGIN');
  await client.query(
    `INSERT INTO read_models.members (conversation_id, user_id, active, joined_seq, read_seq)
     VALUES ($1, 'alice', true, 0, 0), ($1, 'bob', $2, 1, 1)
     ON CONFLICT (conversation_id, user_id) DO UPDATE SET active = excluded.active`,
    [conversationId, upTo === 1],
  );
  await client.query(
    `INSERT INTO consumers.checkpoints (name, position) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET position = excluded.position`,
    [READ_MODEL_CHECKPOINT, at[upTo]],
  );
  await client.query('COMMIT');
};

beforeAll(async () => {
  database = await createTestDatabase('membershipsource');
  await migrateEventStore(database.url);
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  await migrateReadModels(pool);
  store = createPostgresEventStore({ connectionString: database.url });
  const stream = `conversation-${conversationId}`;
  const started = event('ConversationStarted', {
    kind: 'group',
    title: 'g',
    createdBy: 'alice',
    members: ['alice'],
  });
  at.push((await store.append(stream, [started], 'no_stream')).position);
  at.push(
    (await store.append(stream, [event('MemberJoined', { userId: 'bob', addedBy: 'alice' })], 0)).position,
  );
  at.push(
    (await store.append(stream, [event('MemberLeft', { userId: 'bob', removedBy: 'alice' })], 1)).position,
  );
  // The head trails commits while any transaction of the cluster is older (other tests, other databases).
  await waitFor(async () => (await store.headPosition()) >= at[2]!, { what: 'log head', timeoutMs: 30_000 });
}, 60_000);

afterAll(async () => {
  await store?.close();
  await pool?.end();
  await database?.drop();
});

describe('readModelMembership', () => {
  it('answers the log head whatever the read model does meanwhile: bob left, alice is in', async () => {
    const source = readModelMembership(createReadModelDb(pool), store);
    const writer = await pool.connect();
    let stop = false;
    const flipping = (async () => {
      while (!stop) {
        await project(writer, 2);
        await project(writer, 1);
      }
    })();
    const answers: string[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        const { memberships, position } = await source.membershipsOf(['alice', 'bob']);
        expect(position >= at[2]!).toBe(true);
        const ids = (user: string) => (memberships.get(user) ?? []).map((m) => m.conversationId);
        answers.push(`alice:${ids('alice').length} bob:${ids('bob').length}`);
      }
    } finally {
      stop = true;
      await flipping;
      writer.release();
    }
    expect(new Set(answers)).toEqual(new Set(['alice:1 bob:0']));
  });

  it('gives each membership the seq of the event that made it', async () => {
    const source = readModelMembership(createReadModelDb(pool), store);
    const { memberships } = await source.membershipsOf(['alice', 'bob', 'carol']);
    expect(memberships.get('alice')).toEqual([{ conversationId, seq: 0 }]);
    expect(memberships.has('bob')).toBe(false);
    expect(memberships.has('carol')).toBe(false);
  });

  it('gives each user its blocks, either way: the read model’s, then the log’s blocks it has not applied yet', async () => {
    await pool.query(
      `INSERT INTO read_models.user_blocks (user_id, blocked_user_id, blocked_at) VALUES ('erin', 'carol', now())`,
    );
    const block = async (type: 'UserBlocked' | 'UserUnblocked', userId: string, blockedUserId: string) =>
      (
        await store.append(
          `user-${userId}`,
          [{ ...event(type, {}), data: { userId, blockedUserId, at: new Date().toISOString() } }],
          'any',
        )
      ).position;
    await block('UserBlocked', 'carol', 'dave');
    await block('UserUnblocked', 'erin', 'carol');
    const last = await block('UserBlocked', 'frank', 'carol');
    await waitFor(async () => (await store.headPosition()) >= last, { what: 'log head', timeoutMs: 30_000 });
    const source = readModelMembership(createReadModelDb(pool), store);
    const { blocks } = await source.membershipsOf(['carol', 'dave', 'alice']);
    expect(blocks?.get('carol')).toEqual([
      { otherUserId: 'dave', blocking: true },
      { otherUserId: 'frank', blocking: false },
    ]);
    expect(blocks?.get('dave')).toEqual([{ otherUserId: 'carol', blocking: false }]);
    expect(blocks?.has('alice')).toBe(false);
  });
  it('finds a read-model block from either side: the blocker asked alone, and the blocked user asked alone', async () => {
    await pool.query(
      `INSERT INTO read_models.user_blocks (user_id, blocked_user_id, blocked_at) VALUES ('gina', 'hank', now())`,
    );
    const source = readModelMembership(createReadModelDb(pool), store);
    expect((await source.membershipsOf(['hank'])).blocks?.get('hank')).toEqual([
      { otherUserId: 'gina', blocking: false },
    ]);
    expect((await source.membershipsOf(['gina'])).blocks?.get('gina')).toEqual([
      { otherUserId: 'hank', blocking: true },
    ]);
  });
});
