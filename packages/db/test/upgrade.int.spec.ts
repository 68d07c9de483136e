import { createTestDatabase, type TestDatabase } from '@chat/testkit';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createReadModelDb,
  migrateReadModels,
  READ_MODEL_SCHEMA,
  readCheckpoint,
  readModelMigrations,
} from '../src/index.js';

// An installation from before the one checkpoint table: the read models' checkpoint in their own
// schema, the relay's in a schema it created at start-up. Migrating carries both positions over.

let database: TestDatabase;
let pool: pg.Pool;
const P = (n: number) => n.toString(16).padStart(32, '0');

beforeAll(async () => {
  database = await createTestDatabase('upgrade');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

const exists = async (relation: string) =>
  (await pool.query<{ r: string | null }>('SELECT to_regclass($1) AS r', [relation])).rows[0]?.r !== null;

describe('upgrading to consumers.checkpoints', () => {
  it('carries the read models’ and the relay’s old checkpoints over and drops the old tables', async () => {
    const legacy = new Migrator({
      db: new Kysely({ dialect: new PostgresDialect({ pool }) }),
      migrationTableSchema: READ_MODEL_SCHEMA,
      provider: { getMigrations: async () => readModelMigrations(READ_MODEL_SCHEMA) },
    });
    expect((await legacy.migrateTo('2026_11_22_001_read_models')).error).toBeUndefined();
    await pool.query(`INSERT INTO read_models.checkpoints (name, position) VALUES ('read_models', $1)`, [
      P(0x51),
    ]);
    await pool.query('CREATE SCHEMA relay');
    await pool.query(
      `CREATE TABLE relay.checkpoints (name text PRIMARY KEY, position text NOT NULL,
         updated_at timestamptz NOT NULL DEFAULT now())`,
    );
    await pool.query(`INSERT INTO relay.checkpoints (name, position) VALUES ('relay', $1)`, [P(0x77)]);

    await migrateReadModels(pool);
    await migrateReadModels(pool);

    const { rows } = await pool.query('SELECT name, position FROM consumers.checkpoints ORDER BY name');
    expect(rows).toEqual([
      { name: 'read_models', position: P(0x51) },
      { name: 'relay', position: P(0x77) },
    ]);
    expect(await readCheckpoint(createReadModelDb(pool))).toBe(P(0x51));
    expect(await exists('read_models.checkpoints')).toBe(false);
    expect(await exists('relay.checkpoints')).toBe(false);
    const relaySchema = await pool.query(`SELECT 1 FROM pg_namespace WHERE nspname = 'relay'`);
    expect(relaySchema.rowCount).toBe(0);
  });
});
