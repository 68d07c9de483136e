import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

// A PostgreSQL cluster of the run's own (initdb into a temp dir, pg_ctl on its own port), so the nemesis
// can stop it without touching the machine's shared one. Postgres refuses to run as root: as root every
// command runs as the `postgres` user through runuser.

const binDir = (): string => {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(join(root, v, 'bin/initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!versions[0])
    throw new Error(`no PostgreSQL server binaries under ${root} (apt-get install postgresql)`);
  return join(root, versions[0], 'bin');
};

const asRoot = process.getuid?.() === 0;

const postgresUid = async (): Promise<{ uid: number; gid: number }> => {
  const [uid, gid] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
};

export type PrivatePostgres = {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/<database>` */
  url: (database: string) => string;
  /** The postmaster's PID while it runs (from postmaster.pid). */
  pid: () => number | undefined;
  start: () => Promise<void>;
  /** `pg_ctl stop -m immediate`: every backend killed at once, crash recovery at the next start. */
  stopImmediately: () => Promise<void>;
  /** `pg_ctl stop -m fast`, for the end of the run. */
  stop: () => Promise<void>;
  createDatabase: (name: string) => Promise<void>;
};

export const initPrivatePostgres = async (options: {
  dir: string;
  port: number;
}): Promise<PrivatePostgres> => {
  const bin = binDir();
  const data = join(options.dir, 'data');
  const log = join(options.dir, 'postgres.log');
  mkdirSync(options.dir, { recursive: true });
  if (asRoot) {
    const { uid, gid } = await postgresUid();
    chownSync(options.dir, uid, gid);
  }
  const pgCommand = (tool: string, args: string[], timeoutMs = 60_000) =>
    asRoot
      ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args], { timeout: timeoutMs })
      : run(join(bin, tool), args, { timeout: timeoutMs });
  await pgCommand('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
  // Loopback only, its socket in its own directory, enough connections for every service plus the run.
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    [
      `port = ${options.port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${options.dir}'`,
      'max_connections = 300',
      'shared_buffers = 256MB',
      '',
    ].join('\n'),
  );
  const pid = (): number | undefined => {
    try {
      return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]) || undefined;
    } catch {
      return undefined;
    }
  };
  const url = (database: string) => `postgres://postgres@127.0.0.1:${options.port}/${database}`;
  const psql = (sql: string) =>
    run(
      'psql',
      ['-h', '127.0.0.1', '-p', String(options.port), '-U', 'postgres', '-d', 'postgres', '-qAtc', sql],
      {
        timeout: 30_000,
      },
    );
  return {
    port: options.port,
    url,
    pid,
    start: async () => {
      await pgCommand('pg_ctl', ['-D', data, '-l', log, '-w', '-t', '120', 'start'], 130_000);
    },
    stopImmediately: async () => {
      await pgCommand('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    },
    stop: async () => {
      if (pid() === undefined) return;
      await pgCommand('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '30', 'stop']).catch(() =>
        pgCommand('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']),
      );
    },
    createDatabase: async (name: string) => {
      await psql(`CREATE DATABASE "${name}"`);
    },
  };
};
