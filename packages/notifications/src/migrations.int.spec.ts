import { readCheckpoint as readConsumerCheckpoint } from '@chat/consumer';
import { createTestDatabase, type TestDatabase } from '@chat/testkit';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { migrateNotifier, notifierMigrations } from './migrations.js';
import { NOTIFIER_CONSUMER, readCheckpoint } from './store/notifications.js';

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

it('upgrades a notifier schema of the first cut, carrying its checkpoint over', async () => {
  // The first cut ran its steps at every migrate, without kysely's bookkeeping: exactly what the first
  // frozen migration does when run by hand.
  await notifierMigrations['2026_11_27_001_notifier_tables']!.up(
    new Kysely({ dialect: new PostgresDialect({ pool }) }),
  );
  const position = '00000000000003e80000000000000007';
  await pool.query(`INSERT INTO notifier.checkpoints (name, position) VALUES ('notifier', $1)`, [position]);
  await pool.query(`INSERT INTO notifier.conversations (conversation_id, kind) VALUES ('c1', 'group')`);

  await migrateNotifier(pool);
  await migrateNotifier(pool);

  expect(await readConsumerCheckpoint(pool, NOTIFIER_CONSUMER)).toBe(position);
  expect(await readCheckpoint(pool)).toBe(position);
  expect((await pool.query(`SELECT to_regclass('notifier.checkpoints') AS r`)).rows[0].r).toBeNull();
  expect((await pool.query('SELECT conversation_id FROM notifier.conversations')).rows).toEqual([
    { conversation_id: 'c1' },
  ]);
});
