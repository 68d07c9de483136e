import {
  type CpuGroup,
  type CpuUsage,
  cpuBetween,
  HOST,
  HOST_LESS_LOAD,
  processTree,
  sampleCpu,
  withHostLessLoad,
} from '@chat/processes';
import { type GeneratorPool, type MergedRun, mergeRuns } from './generators.js';
import { type LatencySummary, mergeHistograms, summarize } from './histogram.js';
import type { ProgressReply, RunCommand, RunReply, SendPlan, SentReply } from './load/protocol.js';

export type FanoutResult = {
  offeredRate: number;
  durationS: number;
  run: MergedRun;
  expected: number;
  delivered: number;
  lost: number;
  deliveriesPerSec: number;
  latency: LatencySummary;
  ack: LatencySummary;
  /** Per group, plus HOST and HOST_LESS_LOAD (the host less the generators and the orchestrator). */
  cpu: Map<string, CpuUsage>;
  /** Cores used by each generator process. */
  generatorCores: number[];
  /** Busy cores of the whole host over the run (includes processes that are not the bench's). */
  hostCores: number;
  /** Length of the measured window (send + drain), seconds. */
  windowS: number;
};

let runNo = 0;

/**
 * Every socket of the pool sends in turn (round-robin over its generator's sockets) into its first
 * conversation; the pool offers `rate` messages/s in total, split evenly over the generators.
 */
export const sendPlans = (pool: GeneratorPool): SendPlan[][] =>
  pool.sockets.map((slice) =>
    slice.flatMap((s, socket) =>
      s.conversationIds?.[0] ? [{ socket, conversationId: s.conversationIds[0] }] : [],
    ),
  );

export const generatorGroups = (pool: GeneratorPool): CpuGroup[] =>
  pool.generators.map((g, i) => ({ name: `gen${i}`, pids: () => processTree(g.child.pid) }));

/** This orchestrator: it drives the generators and polls them, so it is load, not system. */
export const ORCHESTRATOR: CpuGroup = { name: 'orchestrator', pids: () => [process.pid] };

/** What is subtracted from the host's busy CPU to get the system's: every generator and the orchestrator. */
export const loadGroups = (pool: GeneratorPool): CpuGroup[] => [...generatorGroups(pool), ORCHESTRATOR];

/**
 * One open-loop run: offered rate fixed, CPU of `groups` and of the generators sampled over the run
 * (send window plus drain), deliveries counted from the message bodies of this run only.
 */
export const runFanout = async (
  pool: GeneratorPool,
  options: {
    rate: number;
    durationMs: number;
    drainMs?: number;
    membersPerConversation: number;
    groups: readonly CpuGroup[];
    plans?: SendPlan[][];
    bodyPadding?: number;
    /** Called while the run is in flight (e.g. to sample projection lag). */
    during?: (signal: AbortSignal) => Promise<void>;
  },
): Promise<FanoutResult> => {
  const runId = `r${Date.now().toString(36)}${++runNo}`;
  const plans = options.plans ?? sendPlans(pool);
  const gens = generatorGroups(pool);
  const load = [...gens, ORCHESTRATOR];
  const groups = [...options.groups, ...load];
  const drainMs = options.drainMs ?? 15_000;
  const before = sampleCpu(groups);
  const abort = new AbortController();
  const sideJob = options.during?.(abort.signal);
  await Promise.all(
    pool.generators.map((g, i) =>
      g.request<SentReply>(
        {
          type: 'run',
          runId,
          rate: options.rate / pool.generators.length,
          durationMs: options.durationMs,
          plan: plans[i]!,
          bodyPadding: options.bodyPadding ?? 40,
        } satisfies RunCommand,
        options.durationMs + 60_000,
      ),
    ),
  );
  // Drain: until every ack is in and every acked message reached all its members, or the cap.
  const deadline = performance.now() + drainMs;
  for (;;) {
    const p = await Promise.all(
      pool.generators.map((g) => g.request<ProgressReply>({ type: 'progress' }, 10_000)),
    );
    const sum = (f: (r: ProgressReply) => number) => p.reduce((s, r) => s + f(r), 0);
    const complete =
      sum((r) => r.pending) === 0 &&
      sum((r) => r.received - r.duplicates) >= sum((r) => r.acked) * options.membersPerConversation;
    if (complete || performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const replies = await Promise.all(
    pool.generators.map((g) => g.request<RunReply>({ type: 'finish' }, 10_000)),
  );
  const after = sampleCpu(groups);
  abort.abort();
  await sideJob;
  const run = mergeRuns(replies);
  const cpu = withHostLessLoad(
    cpuBetween(before, after),
    load.map((g) => g.name),
  );
  const delivered = run.received - run.duplicates;
  const expected = run.acked * options.membersPerConversation;
  const seconds = (after.at - before.at) / 1000;
  return {
    offeredRate: options.rate,
    durationS: options.durationMs / 1000,
    run,
    expected,
    delivered,
    lost: Math.max(0, expected - delivered),
    deliveriesPerSec: delivered / seconds,
    latency: summarize(mergeHistograms(run.deliveryHistograms)),
    ack: summarize(mergeHistograms(run.ackHistograms)),
    cpu,
    generatorCores: gens.map((g) => cpu.get(g.name)?.cores ?? 0),
    hostCores: cpu.get(HOST)?.cores ?? 0,
    windowS: seconds,
  };
};

/** CPU µs the named groups spent in the run per `count` (null when there is nothing to divide by). */
const cpuMicrosPer = (r: FanoutResult, names: readonly string[], count: number): number | null => {
  if (count === 0) return null;
  const seconds = names.reduce((s, n) => s + (r.cpu.get(n)?.cpuSeconds ?? 0), 0);
  return (seconds * 1e6) / count;
};

/** CPU µs spent by the named groups per delivered message. */
export const cpuMicrosPerDelivery = (r: FanoutResult, names: readonly string[]): number | null =>
  cpuMicrosPer(r, names, r.delivered);

/**
 * CPU µs spent by the named groups per frame the sockets received (events, acks, and what else the
 * server sends: the gateway also sends each recipient an unread and a notification frame per message).
 */
export const cpuMicrosPerFrame = (r: FanoutResult, names: readonly string[]): number | null =>
  cpuMicrosPer(r, names, r.run.frames);

export const generatorBottleneck = (r: FanoutResult): boolean => r.generatorCores.some((c) => c >= 0.75);

/**
 * CPU (cores) each group uses while the sockets are connected and nothing is sent; with the pool's
 * load groups also HOST_LESS_LOAD, the host's idle baseline (other people's processes included).
 */
export const idleCores = async (
  groups: readonly CpuGroup[],
  load: readonly CpuGroup[] = [],
  ms = 3000,
): Promise<Map<string, number>> => {
  // Let the work that follows a burst of connects (presence writes, subscriptions) settle first.
  await new Promise((r) => setTimeout(r, 3000));
  const all = [...groups, ...load];
  const a = sampleCpu(all);
  await new Promise((r) => setTimeout(r, ms));
  const usage = withHostLessLoad(
    cpuBetween(a, sampleCpu(all)),
    load.map((g) => g.name),
  );
  const names = [...groups.map((g) => g.name), ...(load.length > 0 ? [HOST_LESS_LOAD] : [])];
  return new Map(names.map((n) => [n, usage.get(n)?.cores ?? 0]));
};

/** CPU µs per delivery above the idle baseline (heartbeats, presence, polling do not scale with traffic). */
export const excessMicrosPerDelivery = (
  r: FanoutResult,
  names: readonly string[],
  idle: Map<string, number>,
  windowS: number,
): number | null => {
  if (r.delivered === 0) return null;
  const seconds = names.reduce(
    (s, n) => s + Math.max(0, (r.cpu.get(n)?.cpuSeconds ?? 0) - (idle.get(n) ?? 0) * windowS),
    0,
  );
  return (seconds * 1e6) / r.delivered;
};
