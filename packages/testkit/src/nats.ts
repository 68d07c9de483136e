import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runId } from './infra.js';
import { freePort } from './process.js';
import { waitFor } from './wait.js';

/** A NATS subject prefix of its own for one test file, e.g. `t_r1a2b3c4_9f8e7d`. */
export const testSubjectPrefix = (): string => `t_${runId()}_${randomBytes(3).toString('hex')}`;

export type NatsServerProcess = {
  port: number;
  /** Its JetStream storage directory (removed by `stop`). */
  dir: string;
  /** Everything the server logged so far. */
  output: () => string;
  /** The running server's PID (undefined while it is down). */
  pid: () => number | undefined;
  /** SIGKILL, keeping port and storage: `start` brings the same server back. */
  kill: () => Promise<void>;
  start: () => Promise<void>;
  /** SIGSTOP: the server freezes, its connections open but silent. `thaw` (SIGCONT) undoes it. */
  freeze: () => void;
  thaw: () => void;
  /** Kills it and removes its storage. */
  stop: () => Promise<void>;
};

/**
 * A private `nats-server -js` on its own loopback port and storage directory, for tests that restart
 * NATS or configure it (auth, TLS): never the shared server. `args` add to the command line (e.g.
 * `-c <file>`), `env` to its environment (config files read `$VARIABLES` from it).
 */
export const startNatsServer = async (
  options: { args?: string[]; env?: Record<string, string> } = {},
): Promise<NatsServerProcess> => {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'chat-nats-'));
  let child: ChildProcess | undefined;
  let output = '';
  const kill = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    const exited = new Promise((r) => running.once('exit', r));
    running.kill('SIGKILL');
    await exited;
  };
  const start = async () => {
    const spawned = spawn(
      '/usr/sbin/nats-server',
      [...(options.args ?? []), '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir],
      { env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = spawned;
    spawned.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    spawned.stderr?.on('data', (d: Buffer) => {
      output += d.toString();
    });
    await waitFor(
      () => {
        if (spawned.exitCode !== null) throw new Error(`nats-server exited:\n${output}`);
        return new Promise<boolean>((resolve) => {
          const s = tcpConnect(port, '127.0.0.1');
          s.once('connect', () => {
            s.destroy();
            resolve(true);
          });
          s.once('error', () => resolve(false));
        });
      },
      { what: 'nats-server listening' },
    );
  };
  await start();
  return {
    port,
    dir,
    output: () => output,
    pid: () => (child && child.exitCode === null ? child.pid : undefined),
    kill,
    start,
    freeze: () => {
      child?.kill('SIGSTOP');
    },
    thaw: () => {
      child?.kill('SIGCONT');
    },
    stop: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
};
