import { existsSync, mkdirSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { type Child, spawnChild } from '@chat/processes';

// A nats-server of the run's own (JetStream, its own port and store directory), so the nemesis can kill
// or freeze it by its PID without touching the machine's shared one.

const NATS_SERVER = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

export const portAnswers = (port: number, timeoutMs = 500): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = tcpConnect({ host: '127.0.0.1', port, timeout: timeoutMs });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });

export type PrivateNats = {
  port: number;
  url: string;
  current: () => Child | undefined;
  start: () => Promise<void>;
  /** SIGKILL; resolves once it has exited. */
  kill: () => Promise<void>;
  /** SIGSTOP / SIGCONT: frozen, its connections open but silent. */
  freeze: () => void;
  thaw: () => void;
  stop: () => Promise<void>;
};

export const privateNats = (options: { dir: string; port: number }): PrivateNats => {
  const binary = NATS_SERVER.find((p) => existsSync(p));
  if (!binary) throw new Error('nats-server not found (apt-get install nats-server)');
  const store = join(options.dir, 'jetstream');
  mkdirSync(store, { recursive: true });
  let child: Child | undefined;
  let starts = 0;
  return {
    port: options.port,
    url: `nats://127.0.0.1:${options.port}`,
    current: () => child,
    async start() {
      child = spawnChild(`nats-server-${++starts}`, binary, [
        '-a',
        '127.0.0.1',
        '-p',
        String(options.port),
        '-js',
        '-sd',
        store,
      ]);
      const deadline = Date.now() + 30_000;
      while (!(await portAnswers(options.port))) {
        if (child.hasExited()) throw new Error(`nats-server exited:\n${child.tail()}`);
        if (Date.now() > deadline)
          throw new Error(`nats-server not listening on ${options.port}:\n${child.tail()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async kill() {
      await child?.kill();
    },
    freeze() {
      child?.process.kill('SIGSTOP');
    },
    thaw() {
      child?.process.kill('SIGCONT');
    },
    async stop() {
      if (!child || child.hasExited()) return;
      child.process.kill('SIGCONT');
      await child.stop(5000);
    },
  };
};
