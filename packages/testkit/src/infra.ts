import { existsSync } from 'node:fs';

/**
 * Where the tests' Postgres and NATS come from. With a Docker engine, global-setup starts them with
 * testcontainers and exports their URLs through these variables; without one they default to the
 * local services (DATABASE_URL / NATS_URL, or the loopback defaults).
 */
export const ENV_ADMIN_DATABASE_URL = 'CHAT_TEST_ADMIN_DATABASE_URL';
export const ENV_NATS_URL = 'CHAT_TEST_NATS_URL';
export const ENV_RUN_ID = 'CHAT_TEST_RUN_ID';

export const adminDatabaseUrl = (): string =>
  process.env[ENV_ADMIN_DATABASE_URL] ??
  withDatabase(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres', 'postgres');

export const natsUrl = (): string =>
  process.env[ENV_NATS_URL] ?? process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

export const runId = (): string => process.env[ENV_RUN_ID] ?? `r${process.pid.toString(36)}`;

export const withDatabase = (url: string, database: string): string => {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
};

/** A Docker engine answers here: a socket on disk or DOCKER_HOST set. */
export const dockerEngineLikely = (): boolean =>
  Boolean(process.env.DOCKER_HOST) ||
  existsSync('/var/run/docker.sock') ||
  existsSync(`${process.env.HOME}/.docker/run/docker.sock`);
