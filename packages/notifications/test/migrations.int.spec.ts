import { readCheckpoint as readConsumerCheckpoint } from '@chat/consumer';
import { createTestDatabase, type TestDatabase } from '@chat/testkit';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrateNotifier, notifierMigrations } from '../src/migrations.js';
import { NOTIFIER_CONSUMER, readCheckpoint } from '../src/store/notifications.js';

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('notifupgrade');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

it('upgrades a notifier schema of the first cut, carrying its checkpoint and its records over', async () => {
  // The first cut ran its steps at every migrate, without kysely's bookkeeping: exactly what the first
  // frozen migration does when run by hand.
  await notifierMigrations['2026_11_27_001_notifier_tables']!.up(
    new Kysely({ dialect: new PostgresDialect({ pool }) }),
  );
  const position = '00000000000003e80000000000000007';
  await pool.query(`INSERT INTO notifier.checkpoints (name, position) VALUES ('notifier', $1)`, [position]);
  await pool.query(`INSERT INTO notifier.conversations (conversation_id, kind) VALUES ('c1', 'group')`);
  // A record of the shared-row layout: its message row holds what it shows.
  await pool.query(
    `INSERT INTO notifier.messages (conversation_id, message_id, actor_id, preview, created_at, position)
     VALUES ('c1', 'm1', 'alice', 'hello', '2026-01-01T00:00:00Z', $1)`,
    [position],
  );
  await pool.query(
    `INSERT INTO notifier.notifications (notification_id, recipient_id, kind, message_ref, created_at)
     SELECT '6a2b1c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', 'bob', 'mention', message_ref, created_at FROM notifier.messages`,
  );

  await migrateNotifier(pool);
  await migrateNotifier(pool);

  expect(await readConsumerCheckpoint(pool, NOTIFIER_CONSUMER)).toBe(position);
  expect(await readCheckpoint(pool)).toBe(position);
  expect((await pool.query(`SELECT to_regclass('notifier.checkpoints') AS r`)).rows[0].r).toBeNull();
  expect((await pool.query('SELECT conversation_id FROM notifier.conversations')).rows).toEqual([
    { conversation_id: 'c1' },
  ]);
  // v1.1: the record carries what it shows; the kinds of the contract are accepted; levels are stored.
  expect(
    (
      await pool.query(
        'SELECT recipient_id, kind, conversation_id, message_id, actor_id, preview FROM notifier.notifications',
      )
    ).rows,
  ).toEqual([
    {
      recipient_id: 'bob',
      kind: 'mention',
      conversation_id: 'c1',
      message_id: 'm1',
      actor_id: 'alice',
      preview: 'hello',
    },
  ]);
  expect((await pool.query(`SELECT to_regclass('notifier.messages') AS r`)).rows[0].r).toBeNull();
  await pool.query(
    `INSERT INTO notifier.notifications
       (notification_id, recipient_id, kind, conversation_id, message_id, actor_id, preview, created_at)
     VALUES (gen_random_uuid(), 'carol', 'reply', 'c1', 'm1', 'alice', 'hello', now())`,
  );
  await expect(
    pool.query(`UPDATE notifier.notifications SET kind = 'shout' WHERE recipient_id = 'carol'`),
  ).rejects.toThrow(/notifications_kind_check/);
  await pool.query(
    `INSERT INTO notifier.levels (conversation_id, user_id, level) VALUES ('c1', 'bob', 'none')`,
  );
});
