import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Child, spawnCommand } from '@chat/processes';
import { freePort } from '@chat/testkit';

// A private redis-server for the Socket.IO reference: Debian's binary, on a free loopback port, no
// persistence (`--save "" --appendonly no`), its own temporary directory, started and stopped by its
// PID. Any Redis already running on the host (e.g. on 6379) is never touched.

export const REDIS_SERVER = process.env.BENCH_REDIS_SERVER ?? '/usr/bin/redis-server';

/**
 * Installs Debian's `redis-server` when the binary is missing and we are root (like
 * infra/ensure-services.sh does for Postgres); otherwise says how to get it.
 */
export const ensureRedisServer = (log: (msg: string) => void = () => {}): void => {
  if (existsSync(REDIS_SERVER)) return;
  if (process.getuid?.() !== 0)
    throw new Error(`${REDIS_SERVER} is missing: apt-get install redis-server (as root), then run again`);
  log('installing redis-server from the OS packages');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { env, stdio: 'ignore', timeout: 180_000 });
  execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], {
    env,
    stdio: 'ignore',
    timeout: 300_000,
  });
  if (!existsSync(REDIS_SERVER))
    throw new Error(`apt-get installed redis-server but ${REDIS_SERVER} is missing`);
};

export type PrivateRedis = {
  child: Child;
  port: number;
  url: string;
  dir: string;
  stop: () => Promise<void>;
};

/** Answers true once `PING` on 127.0.0.1:port gets `+PONG`. */
const pings = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });

export const startPrivateRedis = async (name: string): Promise<PrivateRedis> => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'chat-bench-redis-'));
  const child = spawnCommand(name, REDIS_SERVER, [
    '--bind',
    '127.0.0.1',
    '--port',
    String(port),
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--protected-mode',
    'yes',
    '--loglevel',
    'warning',
  ]);
  // However it ends (stopped, crashed, or the bench's stopAll on Ctrl-C), its directory goes with it.
  void child.exited.then(() => rmSync(dir, { recursive: true, force: true }));
  try {
    for (let i = 0; !(await pings(port)); i++) {
      if (child.hasExited() || i > 100)
        throw new Error(`${name} did not start on :${port}:\n${child.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  } catch (err) {
    await child.stop();
    throw err;
  }
  return {
    child,
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    stop: async () => {
      await child.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
};
