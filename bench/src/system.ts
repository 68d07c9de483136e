import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort } from '@chat/testkit';
import pg from 'pg';
import { type Child, REPO_ROOT, runToCompletion, spawnTs } from './children.js';
import { type CpuGroup, natsPids, postgresPids, processTree } from './proc.js';

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
      const mod = (await import(pathToFileURL(join(REPO_ROOT, file)).href)) as Record<string, unknown>;
      const migrator = mod[fn];
      if (typeof migrator !== 'function') throw new Error(`${file} exports no ${fn}`);
      await (migrator as Migrator)(pool);
    }
  } finally {
    await pool.end();
  }
};

export type ServiceName = 'command-api' | 'ws-gateway' | 'projector' | 'notifier';

export const serviceExists = (service: ServiceName): boolean =>
  existsSync(join(REPO_ROOT, 'services', service, 'src/main.ts'));

export type RunningService = { name: string; service: ServiceName; port: number; child: Child };

/**
 * Starts a service, retrying twice: in a shared working tree a service may be mid-edit (a syntax error
 * for a few seconds), which must not sink a 15-minute run.
 */
export const startService = async (
  options: Parameters<typeof startServiceOnce>[0],
): Promise<RunningService> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startServiceOnce(options);
    } catch (err) {
      if (attempt >= 3) throw err;
      console.error(`[bench] ${options.name} did not start (attempt ${attempt}); retrying in 15 s`);
      await new Promise((r) => setTimeout(r, 15_000));
    }
  }
};

const startServiceOnce = async (options: {
  name: string;
  service: ServiceName;
  env: Record<string, string>;
  nodeArgs?: string[];
  timeoutMs?: number;
}): Promise<RunningService> => {
  const port = await freePort();
  const child = spawnTs(options.name, `services/${options.service}/src/main.ts`, {
    env: { HOST: '127.0.0.1', ...options.env, PORT: String(port) },
    ...(options.nodeArgs ? { nodeArgs: options.nodeArgs } : {}),
  });
  const deadline = Date.now() + (options.timeoutMs ?? 90_000);
  for (;;) {
    if (child.hasExited()) throw new Error(`${options.name} exited before it was ready:\n${child.tail()}`);
    const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await child.stop(1000);
      throw new Error(`${options.name} not ready on :${port}:\n${child.tail()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name: options.name, service: options.service, port, child };
};

/** CPU groups for a set of services (each a process tree) plus this run's Postgres and NATS. */
export const systemCpuGroups = (services: readonly RunningService[], database: string | null): CpuGroup[] => [
  ...services.map((s) => ({ name: s.name, pids: () => processTree(s.child.pid) })),
  ...(database ? [{ name: 'postgres', pids: () => postgresPids(database) }] : []),
  { name: 'nats', pids: () => natsPids() },
];
