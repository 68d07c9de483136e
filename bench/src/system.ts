import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  type CpuGroup,
  natsPids,
  postgresPids,
  processTree,
  REPO_ROOT,
  type RunningService,
  runToCompletion,
} from '@chat/processes';
import pg from 'pg';
import { importByPath } from './load/by-path.js';

export const ADMIN_DATABASE_URL =
  process.env.BENCH_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
export const JWT_SECRET = `bench-secret-${randomBytes(12).toString('hex')}`;

const withAdmin = async <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
};

export type BenchDatabase = { name: string; url: string; drop: () => Promise<void> };

const created = new Set<string>();

export const createDatabase = async (label: string): Promise<BenchDatabase> => {
  const name = `chat_bench_${label}_${Date.now().toString(36)}`;
  await withAdmin((c) => c.query(`CREATE DATABASE "${name}"`));
  created.add(name);
  const u = new URL(ADMIN_DATABASE_URL);
  u.pathname = `/${name}`;
  const drop = async () => {
    await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    created.delete(name);
  };
  return { name, url: u.toString(), drop };
};

/** Drops every database this run created (used on failure and SIGINT). */
export const dropCreatedDatabases = async (): Promise<void> => {
  for (const name of [...created]) {
    await withAdmin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).catch(() => undefined);
    created.delete(name);
  }
};

type Migrator = (pool: pg.Pool) => Promise<unknown>;

/** `infra/migrate.ts` when it exists; otherwise each package's exported migration function. */
export const migrate = async (databaseUrl: string): Promise<void> => {
  if (existsSync(join(REPO_ROOT, 'infra/migrate.ts'))) {
    await runToCompletion('migrate', 'infra/migrate.ts', { DATABASE_URL: databaseUrl });
    return;
  }
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  try {
    const steps: [string, string][] = [
      ['packages/eventstore/src/index.ts', 'migrateEventStore'],
      ['packages/db/src/index.ts', 'migrateReadModels'],
      ['packages/notifications/src/index.ts', 'migrateNotifier'],
    ];
    for (const [file, fn] of steps) {
      const mod = await importByPath(file);
      const migrator = mod[fn];
      if (typeof migrator !== 'function') throw new Error(`${file} exports no ${fn}`);
      await (migrator as Migrator)(pool);
    }
  } finally {
    await pool.end();
  }
};

export { type RunningService, type ServiceName, serviceExists, startService } from '@chat/processes';

/** CPU groups for a set of services (each a process tree) plus this run's Postgres and NATS. */
export const systemCpuGroups = (services: readonly RunningService[], database: string | null): CpuGroup[] => [
  ...services.map((s) => ({ name: s.name, pids: () => processTree(s.child.pid) })),
  ...(database ? [{ name: 'postgres', pids: () => postgresPids(database) }] : []),
  { name: 'nats', pids: () => natsPids() },
];
