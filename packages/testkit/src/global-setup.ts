import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  adminDatabaseUrl,
  dockerEngineLikely,
  ENV_ADMIN_DATABASE_URL,
  ENV_NATS_URL,
  ENV_RUN_ID,
  natsUrl,
  withDatabase,
} from './infra.js';

type Stoppable = { stop: () => Promise<unknown> };

/**
 * Vitest global setup for int/e2e tiers: picks the infrastructure once per run (testcontainers when a
 * Docker engine answers, else the local services) and gives the run an id that prefixes every database
 * and NATS subject it creates. Teardown drops this run's leftover databases, never another run's.
 */
export default async function setup(): Promise<() => Promise<void>> {
  process.env[ENV_RUN_ID] ??= `r${randomBytes(4).toString('hex')}`;
  const started: Stoppable[] = [];
  if (
    !process.env[ENV_ADMIN_DATABASE_URL] &&
    dockerEngineLikely() &&
    process.env.CHAT_TEST_NO_DOCKER !== '1'
  ) {
    try {
      const { getContainerRuntimeClient } = await import('testcontainers');
      await getContainerRuntimeClient();
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      const { NatsContainer } = await import('@testcontainers/nats');
      const postgres = await new PostgreSqlContainer('postgres:16-alpine').start();
      started.push(postgres);
      const nats = await new NatsContainer('nats:2.10-alpine').withJetStream().start();
      started.push(nats);
      process.env[ENV_ADMIN_DATABASE_URL] = withDatabase(postgres.getConnectionUri(), 'postgres');
      process.env[ENV_NATS_URL] = `nats://${nats.getHost()}:${nats.getMappedPort(4222)}`;
      console.info('[testkit] using testcontainers for Postgres and NATS');
    } catch (err) {
      console.info(
        `[testkit] no usable Docker engine (${(err as Error).message.split('\n')[0]}); using local services`,
      );
    }
  } else if (!process.env[ENV_ADMIN_DATABASE_URL]) {
    console.info(`[testkit] no Docker engine; using local Postgres and NATS (${natsUrl()})`);
  }
  process.env[ENV_ADMIN_DATABASE_URL] ??= adminDatabaseUrl();
  process.env[ENV_NATS_URL] ??= natsUrl();

  return async () => {
    await dropRunDatabases(process.env[ENV_RUN_ID]!).catch((err: unknown) => {
      console.warn(`[testkit] could not drop test databases: ${String(err)}`);
    });
    for (const s of started.reverse()) await s.stop();
  };
}

const dropRunDatabases = async (run: string): Promise<void> => {
  const client = new pg.Client({ connectionString: adminDatabaseUrl() });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1`,
      [`chat_test_${run}_%`],
    );
    for (const { datname } of rows) await client.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
};
