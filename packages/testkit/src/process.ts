import { type ChildProcess, spawn } from 'node:child_process';
import { readdir, readFile, readlink } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export type ServiceProcess = {
  name: string;
  pid: number;
  child: ChildProcess;
  /** Everything the process wrote so far (stdout + stderr), for assertions and failure messages. */
  output: () => string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop: (graceMs?: number) => Promise<void>;
  /** SIGKILL: a crash, for fault tests. */
  kill: () => Promise<void>;
};

/**
 * Starts a service's `src/main.ts` (e.g. `services/projector`) as a real child process with `env`
 * added to this process's environment. Waits until `ready` (a URL answering 200, or a line of output
 * matching a RegExp) before resolving. Only the PID it started is ever signalled.
 */
export const startService = async (options: {
  name: string;
  /** Folder relative to the repo root holding src/main.ts, or an absolute path to a .ts entry file. */
  entry: string;
  env: Record<string, string>;
  ready?: { url: string } | { output: RegExp };
  timeoutMs?: number;
  /** Options for the service's `node` (e.g. `--cpu-prof`, which NODE_OPTIONS does not take). */
  nodeArgs?: readonly string[];
}): Promise<ServiceProcess> => {
  const file = options.entry.endsWith('.ts')
    ? resolve(REPO_ROOT, options.entry)
    : resolve(REPO_ROOT, options.entry, 'src/main.ts');
  // `node --import tsx` keeps the service in ONE process: the tsx CLI would fork a child, and a SIGKILL
  // meant as a crash would hit only the wrapper while the service lived on.
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', file], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: 'info', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<number | NodeJS.Signals | null>((resolveExit) => {
    child.once('exit', (code, signal) => resolveExit(code ?? signal));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${options.name}`);
  running.add(child);
  child.once('exit', () => running.delete(child));
  killRunningOnExit();
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });
  const stop = async (graceMs = 5000) => {
    if (hasExited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const kill = async () => {
    if (hasExited) return;
    child.kill('SIGKILL');
    await exited;
  };
  const service: ServiceProcess = {
    name: options.name,
    pid,
    child,
    output: () => output,
    exited,
    stop,
    kill,
  };

  if (options.ready) {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    const ready = options.ready;
    for (;;) {
      if (hasExited) throw new Error(`${options.name} exited before it was ready:\n${output}`);
      if ('url' in ready) {
        const ok = await fetch(ready.url).then(
          (r) => r.ok,
          () => false,
        );
        if (ok && (await answeredBy(pid, ready.url))) break;
      } else if (ready.output.test(output)) break;
      if (Date.now() > deadline) {
        await kill();
        throw new Error(`${options.name} not ready after ${options.timeoutMs ?? 30_000} ms:\n${output}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return service;
};

/**
 * Starts services side by side (each waits for its own readiness; none needs another to start): a
 * process's startup is mostly loading its modules, so on a host of several cores they overlap. The first
 * failure is thrown only once every start has settled, so the caller has every service that came up in
 * hand to stop (with Promise.all, a start that failed at once let the caller's clean-up run before the
 * others were ready, and those lived on).
 */
export const startTogether = async <T extends readonly (() => Promise<unknown>)[]>(
  ...starts: T
): Promise<{ [K in keyof T]: Awaited<ReturnType<T[K]>> }> => {
  const results = await Promise.allSettled(starts.map((start) => start()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as {
    [K in keyof T]: Awaited<ReturnType<T[K]>>;
  };
};

/** The children of this process that have not exited yet. */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;
/**
 * A test file's worker that exits while a start is still pending (a hook timed out before its
 * `afterAll` could stop what the start had not returned yet) takes those children along instead of
 * leaving them running. Only PIDs this module started are signalled.
 */
const killRunningOnExit = () => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
};

/** Ports this process has handed out: the kernel may offer a closed one again before its child binds it. */
const handedOut = new Set<number>();

/**
 * A free TCP port on 127.0.0.1 (for child processes that must be told their port up front), never one
 * this process handed out before.
 */
export const freePort = async (): Promise<number> => {
  const { createServer } = await import('node:net');
  for (;;) {
    const port = await new Promise<number>((resolvePort, reject) => {
      const srv = createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const port = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolvePort(port));
      });
    });
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    return port;
  }
};

/**
 * Whether process `pid` holds the listening socket of `port` on this host: a port picked up front can be
 * taken by another listener before the child binds it, and that listener's `/readyz` must not pass for
 * the child's (the child then fails to bind and exits, which its start reports). Linux: the LISTEN rows
 * of /proc/net/tcp{,6} against the socket inodes among the process's fds; `undefined` where the host has
 * no such tables.
 */
export const listensOn = async (pid: number, port: number): Promise<boolean | undefined> => {
  const hexPort = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const inodes = new Set<string>();
  let tables = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    tables++;
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st … inode: st 0A is LISTEN, the inode is the tenth column.
      const [, local, , state, , , , , , inode] = line.trim().split(/\s+/);
      if (state === '0A' && local?.endsWith(hexPort) && inode) inodes.add(inode);
    }
  }
  if (tables === 0) return undefined;
  // No fd folder: the process has exited (it failed to bind, most likely), so it listens on nothing.
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
  for (const fd of fds) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
    if (inode && inodes.has(inode)) return true;
  }
  return false;
};

/** Whether `url`'s port is listened on by `pid` (true where the host cannot tell). */
export const answeredBy = async (pid: number, url: string): Promise<boolean> => {
  const { port } = new URL(url);
  return port === '' || (await listensOn(pid, Number(port))) !== false;
};
