import { type ChildProcess, spawn } from 'node:child_process';
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
        if (ok) break;
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

/** A free TCP port on 127.0.0.1 (for child processes that must be told their port up front). */
export const freePort = async (): Promise<number> => {
  const { createServer } = await import('node:net');
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
};
