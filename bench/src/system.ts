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

/** The services name their Postgres sessions (`application_name`, packages/platform `nameDatabaseSessions`). */
const SESSION_NAMES = ['command-api', 'projector', 'notifier', 'ws-gateway'] as const;
const SHARED = 'shared';

export type SessionNames = { nameOf: (pid: number) => string | undefined; stop: () => Promise<void> };

/**
 * The `application_name` of each backend of a database, read from `pg_stat_activity` once a second in
 * the background (pools open and close connections while a run measures), so that a CPU sample can
 * tell which service a backend works for.
 */
export const watchSessionNames = async (databaseUrl: string): Promise<SessionNames> => {
  const names = new Map<number, string>();
  const client = new pg.Client({ connectionString: databaseUrl, application_name: 'bench-observer' });
  client.on('error', () => {});
  await client.connect();
  const refresh = async () => {
    const { rows } = await client.query<{ pid: number; name: string }>(
      'SELECT pid, application_name AS name FROM pg_stat_activity WHERE datname = current_database()',
    );
    names.clear();
    for (const r of rows) names.set(r.pid, r.name);
  };
  await refresh();
  const timer = setInterval(() => void refresh().catch(() => {}), 1000).unref();
  return {
    nameOf: (pid) => names.get(pid),
    stop: async () => {
      clearInterval(timer);
      await client.end().catch(() => {});
    },
  };
};

/**
 * CPU groups for a set of services (each a process tree) plus this run's Postgres and NATS. With
 * `sessions`, Postgres is split: the backends of each service's sessions (`postgres (command-api)`, …)
 * and the rest (`postgres (shared)`: the postmaster, WAL writer, checkpointer and other helpers, and
 * sessions of no service), so the groups still add up to the whole.
 */
export const systemCpuGroups = (
  services: readonly RunningService[],
  database: string | null,
  sessions?: SessionNames,
): CpuGroup[] => [
  ...services.map((s) => ({ name: s.name, pids: () => processTree(s.child.pid) })),
  ...(database === null
    ? []
    : sessions === undefined
      ? [{ name: 'postgres', pids: () => postgresPids(database) }]
      : postgresByService(database, sessions)),
  { name: 'nats', pids: () => natsPids() },
];

/**
 * One group per service's sessions plus `postgres (shared)`. A CPU sample asks every group for its pids
 * in one synchronous pass: the database's backends are listed from /proc once for that pass, not once
 * per group.
 */
const postgresByService = (database: string, sessions: SessionNames): CpuGroup[] => {
  const known = new Set<string>(SESSION_NAMES);
  let pass: Map<string, number[]> | undefined;
  const backendsOf = (group: string): number[] => {
    if (!pass) {
      const byGroup = new Map<string, number[]>();
      for (const pid of postgresPids(database)) {
        const name = sessions.nameOf(pid);
        const group = name !== undefined && known.has(name) ? name : SHARED;
        byGroup.set(group, [...(byGroup.get(group) ?? []), pid]);
      }
      pass = byGroup;
      queueMicrotask(() => {
        pass = undefined;
      });
    }
    return pass.get(group) ?? [];
  };
  return [...SESSION_NAMES, SHARED].map((group) => ({
    name: `postgres (${group})`,
    pids: () => backendsOf(group),
  }));
};
