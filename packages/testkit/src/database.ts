import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { adminDatabaseUrl, runId, withDatabase } from './infra.js';

export type TestDatabase = {
  name: string;
  url: string;
  /** Drops the database (forcing out leftover connections). */
  drop: () => Promise<void>;
};

/**
 * A fresh, empty database for one test file (or one test). Names carry the run id, so parallel and
 * repeated runs never share data and the run's teardown can sweep what a crashed test left behind.
 */
export const createTestDatabase = async (label = 'db'): Promise<TestDatabase> => {
  const safeLabel =
    label
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, 16) || 'db';
  const name = `chat_test_${runId()}_${safeLabel}_${randomBytes(3).toString('hex')}`;
  await withAdmin((c) => c.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: withDatabase(adminDatabaseUrl(), name),
    drop: () =>
      withAdmin(async (c) => {
        // Pools that were just ended may still be closing their connections; forcing those out would
        // surface as an uncaught "terminating connection" error in the test process. Give them a moment.
        for (let i = 0; i < 40; i++) {
          const { rows } = await c.query<{ n: number }>(
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
            [name],
          );
          if (!rows[0]?.n) break;
          await new Promise((r) => setTimeout(r, 50));
        }
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }),
  };
};

const withAdmin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
  const client = new pg.Client({ connectionString: adminDatabaseUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
};
