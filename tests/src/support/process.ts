import { type ChildProcess, spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export type NodeService = {
  name: string;
  pid: number;
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | NodeJS.Signals | null>;
  stop: (graceMs?: number) => Promise<void>;
  /** SIGKILL of the service process itself. */
  kill: () => Promise<void>;
};

/**
 * Like @chat/testkit's startService, but runs `node --import tsx <entry>` as ONE process. The tsx CLI
 * runs the script in a child process, so a SIGKILL of its PID leaves the service running: a crash
 * test must signal the process that holds the sockets.
 */
export const startNodeService = async (options: {
  name: string;
  entry: string;
  env: Record<string, string>;
  readyUrl: string;
  timeoutMs?: number;
}): Promise<NodeService> => {
  const file = resolve(REPO_ROOT, options.entry, 'src/main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', file], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    output += d.toString();
  });
  let hasExited = false;
  const exited = new Promise<number | NodeJS.Signals | null>((r) =>
    child.once('exit', (code, signal) => {
      hasExited = true;
      r(code ?? signal);
    }),
  );
  if (child.pid === undefined) throw new Error(`could not start ${options.name}`);
  const kill = async () => {
    if (hasExited) return;
    child.kill('SIGKILL');
    await exited;
  };
  const stop = async (graceMs = 5000) => {
    if (hasExited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    if (hasExited) throw new Error(`${options.name} exited before it was ready:\n${output}`);
    const ok = await fetch(options.readyUrl).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`${options.name} not ready:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { name: options.name, pid: child.pid, child, output: () => output, exited, stop, kill };
};
