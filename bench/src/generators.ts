import { type Child, ipcRequest, spawnTs } from '@chat/processes';
import type {
  ConnectCommand,
  ConnectedReply,
  GeneratorCommand,
  GeneratorReply,
  RunReply,
  SocketSpec,
  StatsReply,
  Target,
} from './load/protocol.js';

export type Generator = {
  child: Child;
  request: <R extends GeneratorReply>(cmd: GeneratorCommand, timeoutMs: number) => Promise<R>;
  close: () => Promise<void>;
};

/** Starts one socket load generator process (its PID is registered like every other child). */
export const startGenerator = (name: string): Generator => {
  const child = spawnTs(name, 'bench/src/load/socket-generator.ts', { ipc: true });
  const request = <R extends GeneratorReply>(cmd: GeneratorCommand, timeoutMs: number): Promise<R> =>
    ipcRequest<R>(child, cmd, timeoutMs);
  const close = async () => {
    if (child.hasExited()) return;
    if (child.process.connected) child.process.send({ type: 'close' } satisfies GeneratorCommand, () => {});
    const timer = setTimeout(() => void child.stop(2000), 5000);
    await child.exited;
    clearTimeout(timer);
  };
  return { child, request, close };
};

export type GeneratorPool = {
  generators: Generator[];
  /** Sockets per generator, in the order they were handed out. */
  sockets: SocketSpec[][];
  connected: ConnectedReply[];
  close: () => Promise<void>;
};

/**
 * Spreads `sockets` over `count` generator processes (round-robin, so each holds a slice of every
 * conversation) and connects them all. Socket i of the input goes to generator i % count.
 */
export const connectPool = async (options: {
  label: string;
  count: number;
  sockets: SocketSpec[];
  targets: Target[];
  jwtSecret: string;
  concurrency?: number;
  timeoutMs?: number;
  budgetMs?: number;
}): Promise<GeneratorPool> => {
  const generators = Array.from({ length: options.count }, (_, i) =>
    startGenerator(`${options.label}-gen${i}`),
  );
  const slices: SocketSpec[][] = generators.map(() => []);
  for (const [i, s] of options.sockets.entries()) slices[i % options.count]!.push(s);
  const close = async () => {
    await Promise.all(generators.map((g) => g.close()));
  };
  try {
    const connected = await Promise.all(
      generators.map((g, i) =>
        g.request<ConnectedReply>(
          {
            type: 'connect',
            targets: options.targets,
            sockets: slices[i]!,
            jwtSecret: options.jwtSecret,
            concurrency: options.concurrency ?? 64,
            timeoutMs: options.timeoutMs ?? 20_000,
            budgetMs: options.budgetMs ?? 120_000,
          } satisfies ConnectCommand,
          (options.budgetMs ?? 120_000) + (options.timeoutMs ?? 20_000) + 30_000,
        ),
      ),
    );
    return { generators, sockets: slices, connected, close };
  } catch (err) {
    await close();
    throw err;
  }
};

export const poolStats = (pool: GeneratorPool): Promise<StatsReply[]> =>
  Promise.all(pool.generators.map((g) => g.request<StatsReply>({ type: 'stats' }, 10_000)));

export type MergedRun = Omit<RunReply, 'type' | 'deliveryHistogram' | 'ackHistogram' | 'firstAckError'> & {
  firstAckError: string | null;
  deliveryHistograms: string[];
  ackHistograms: string[];
};

export const mergeRuns = (runs: RunReply[]): MergedRun => ({
  sent: runs.reduce((s, r) => s + r.sent, 0),
  acked: runs.reduce((s, r) => s + r.acked, 0),
  ackErrors: runs.reduce((s, r) => s + r.ackErrors, 0),
  firstAckError: runs.find((r) => r.firstAckError)?.firstAckError ?? null,
  received: runs.reduce((s, r) => s + r.received, 0),
  frames: runs.reduce((s, r) => s + r.frames, 0),
  duplicates: runs.reduce((s, r) => s + r.duplicates, 0),
  gaps: runs.reduce((s, r) => s + r.gaps, 0),
  unsequenced: runs.reduce((s, r) => s + r.unsequenced, 0),
  closed: runs.reduce((s, r) => s + r.closed, 0),
  skipped: runs.reduce((s, r) => s + r.skipped, 0),
  maxScheduleLagMs: Math.max(0, ...runs.map((r) => r.maxScheduleLagMs)),
  deliveryHistograms: runs.map((r) => r.deliveryHistogram),
  ackHistograms: runs.map((r) => r.ackHistogram),
});
