import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

// Every process a run (the bench, a chaos run) starts is registered here by PID, and only those PIDs
// are ever signalled.
const running = new Map<number, Child>();
/** Set once the run is shutting down: nothing new may start after the last stop. */
let closed = false;
let logDir = '/tmp/chat-processes';

export const setLogDir = (dir: string): void => {
  mkdirSync(dir, { recursive: true });
  logDir = dir;
};
export const currentLogDir = (): string => logDir;

export type Child = {
  name: string;
  pid: number;
  process: ChildProcess;
  exited: Promise<number | string | null>;
  hasExited: () => boolean;
  /** The last 32 KiB of its output. */
  tail: () => string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop: (graceMs?: number) => Promise<void>;
  /** SIGKILL (a crash); resolves once it has exited. */
  kill: () => Promise<void>;
};

/**
 * Runs a TypeScript entry with `node --import tsx` (one process per service, no wrapper in between,
 * so its PID is the process doing the work). `ipc` opens a message channel for driven children.
 */
export const spawnTs = (
  name: string,
  entry: string,
  options: { env?: Record<string, string>; args?: string[]; ipc?: boolean; nodeArgs?: string[] } = {},
): Child =>
  spawnCommand(
    name,
    process.execPath,
    [...(options.nodeArgs ?? []), '--import', 'tsx', resolve(REPO_ROOT, entry), ...(options.args ?? [])],
    { env: { LOG_LEVEL: 'warn', ...options.env }, ...(options.ipc ? { ipc: true } : {}) },
  );

/**
 * Runs any executable (e.g. a private `redis-server`) directly, registered by its PID like every
 * other child: stopped with SIGTERM (then SIGKILL) by that PID, its output in `<name>.log`.
 */
export const spawnCommand = (
  name: string,
  command: string,
  args: readonly string[],
  options: { env?: Record<string, string>; ipc?: boolean } = {},
): Child => {
  if (closed) throw new Error(`not starting ${name}: the run is shutting down`);
  const child = spawn(command, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${name} (${command})`);
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  let tail = '';
  const onData = (d: Buffer) => {
    log.write(d);
    tail = (tail + d.toString()).slice(-32_768);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  let done = false;
  const exited = new Promise<number | string | null>((res) => {
    child.once('exit', (code, signal) => {
      done = true;
      running.delete(pid);
      log.end();
      res(code ?? signal);
    });
  });
  const stop = async (graceMs = 5000) => {
    if (done) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!done) child.kill('SIGKILL');
    }, graceMs);
    await exited;
    clearTimeout(timer);
  };
  const kill = async () => {
    if (done) return;
    child.kill('SIGKILL');
    await exited;
  };
  const c: Child = { name, pid, process: child, exited, hasExited: () => done, tail: () => tail, stop, kill };
  running.set(pid, c);
  return c;
};

export const runningChildren = (): Child[] => [...running.values()];

/** Stops every process this run started (by its PID), in parallel. */
export const stopAll = async (): Promise<void> => {
  closed = true;
  await Promise.all([...running.values()].map((c) => c.stop(10_000)));
};

/** Runs a command to completion (e.g. migrations); rejects with its output on a non-zero exit. */
export const runToCompletion = async (
  name: string,
  entry: string,
  env: Record<string, string>,
  timeoutMs = 120_000,
): Promise<void> => {
  const c = spawnTs(name, entry, { env });
  const timer = setTimeout(() => void c.stop(1000), timeoutMs);
  const code = await c.exited;
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${name} exited with ${String(code)}:\n${c.tail()}`);
};
