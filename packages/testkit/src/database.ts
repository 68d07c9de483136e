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
export const createTestDatabase = async (
  label = 'db',
  options: { template?: DatabaseTemplate } = {},
): Promise<TestDatabase> => {
  const safeLabel =
    label
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, 16) || 'db';
  const name = `chat_test_${runId()}_${safeLabel}_${randomBytes(3).toString('hex')}`;
  if (options.template) {
    const template = await ensureTemplate(options.template);
    // Postgres refuses to copy a database while any session is connected to it; none is after
    // ensureTemplate, but a copy another worker makes at the same moment counts as one for a few ms.
    for (let attempt = 0; ; attempt++) {
      try {
        await withAdmin((c) => c.query(`CREATE DATABASE "${name}" TEMPLATE "${template}"`));
        break;
      } catch (err) {
        if ((err as { code?: string }).code !== '55006' || attempt >= 100) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } else await withAdmin((c) => c.query(`CREATE DATABASE "${name}"`));
  return {
    name,
    url: withDatabase(adminDatabaseUrl(), name),
    drop: () =>
      withAdmin(async (c) => {
        await waitForNoSessions(c, name);
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      }),
  };
};

/**
 * A schema to start test databases from: `migrate` runs once per test run (per `key`) on a database of
 * its own, and every `createTestDatabase(…, { template })` after that is a copy of it (CREATE DATABASE …
 * TEMPLATE: a file copy, no migration work per test file). The copy holds exactly what `migrate` made.
 */
export type DatabaseTemplate = {
  /** Names the schema (lowercase letters and digits): one template database per key and test run. */
  key: string;
  /** Brings an empty database (its URL) to the schema; must close every connection it opened. */
  migrate: (databaseUrl: string) => Promise<void>;
};

const templates = new Map<string, Promise<string>>();

/** The template's database, made (once per run, across workers: an advisory lock) when missing. */
const ensureTemplate = (template: DatabaseTemplate): Promise<string> => {
  const name = `chat_test_${runId()}_tpl_${template.key.replace(/[^a-z0-9]/g, '').slice(0, 24)}`;
  let made = templates.get(name);
  if (!made) {
    made = withAdmin(async (c) => {
      await c.query('SELECT pg_advisory_lock(hashtext($1))', [name]);
      try {
        const { rows } = await c.query<{ ready: boolean }>(
          `SELECT obj_description(oid, 'pg_database') = 'ready' AS ready FROM pg_database WHERE datname = $1`,
          [name],
        );
        if (rows[0]?.ready) return name;
        // A worker that died while migrating left a half-made template: start it again.
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
        await c.query(`CREATE DATABASE "${name}"`);
        await template.migrate(withDatabase(adminDatabaseUrl(), name));
        await waitForNoSessions(c, name);
        await c.query(`COMMENT ON DATABASE "${name}" IS 'ready'`);
        return name;
      } finally {
        await c.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
      }
    });
    made.catch(() => templates.delete(name));
    templates.set(name, made);
  }
  return made;
};

/**
 * Pools that were just ended may still be closing their connections; forcing those out would surface as
 * an uncaught "terminating connection" error in the test process (and a template with a session cannot
 * be copied). Give them a moment.
 */
const waitForNoSessions = async (c: pg.Client, name: string): Promise<void> => {
  for (let i = 0; i < 40; i++) {
    const { rows } = await c.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
      [name],
    );
    if (!rows[0]?.n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
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
