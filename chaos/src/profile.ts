import type { FaultSpec } from './nemesis/faults.js';
import type { Step } from './nemesis/nemesis.js';
import type { PopulationSize } from './workload/population.js';
import type { WorkloadSettings } from './workload/protocol.js';

// The two profiles of `pnpm chaos`: the default (≤ 15 minutes, the figures in the README) and `--quick`
// (≤ 3 minutes, smaller population, every fault class but shorter holds).

export type Profile = {
  name: 'default' | 'quick';
  /** The whole run, start to exit, stays under this (the nemesis skips steps to keep it). */
  budgetMs: number;
  /** Past this everything is stopped and the run fails, whatever it was doing. */
  hardLimitMs: number;
  /** Kept for the heal, the settling of open commands, the catch-up and the checks. */
  endReserveMs: number;
  population: PopulationSize;
  deviceProcesses: number;
  workload: WorkloadSettings;
  warmupMs: number;
  /** Longest wait after a step for the system to be whole again. */
  recoveryCapMs: number;
  /** Longest wait at the end for every consumer at the head and every device caught up. */
  quiesceMs: number;
  gatewayMaxBackpressure: number;
  steps: Step[];
};

const PG_AND_NATS = ['postgres', 'nats'];
const one = (spec: FaultSpec, gapMs: number): Step => ({ faults: [{ atMs: 0, spec }], gapMs });
const together = (gapMs: number, ...faults: [number, FaultSpec][]): Step => ({
  faults: faults.map(([atMs, spec]) => ({ atMs, spec })),
  gapMs,
});

const workload = (rate: number): WorkloadSettings => ({
  rate,
  wsShare: 0.6,
  readShare: 0.1,
  mentionShare: 0.2,
  maxInFlight: 300,
  // Shorter and longer than the gateway's own command timeout (COMMAND_TIMEOUT_MS, 5 s by default).
  commandTimeoutsMs: [4_000, 8_000],
  maxAttempts: 12,
  maxCommandAgeMs: 60_000,
  pingEveryMs: 10_000,
  pongTimeoutMs: 8_000,
});

/** The fault-free pause after each step of the default profile. */
const GAP = 10_000;

export const DEFAULT_PROFILE: Profile = {
  name: 'default',
  budgetMs: 14.5 * 60_000,
  hardLimitMs: 15 * 60_000,
  endReserveMs: 150_000,
  population: {
    conversations: 200,
    users: 1_150,
    maxConversationsPerUser: 3,
    canaries: 20,
    slowUsers: 10,
    hotMembers: 8,
  },
  deviceProcesses: 3,
  workload: workload(40),
  warmupMs: 15_000,
  recoveryCapMs: 45_000,
  quiesceMs: 90_000,
  gatewayMaxBackpressure: 256 * 1024,
  steps: [
    one({ kind: 'kill', service: 'command-api', downMs: 0 }, GAP),
    one({ kind: 'kill', service: 'projector', downMs: 0 }, GAP),
    one({ kind: 'kill', service: 'notifier', downMs: 0 }, GAP),
    one({ kind: 'kill', service: 'gw1', downMs: 5_000 }, GAP),
    one({ kind: 'nats-kill', downMs: 3_000 }, GAP),
    one({ kind: 'nats-freeze', downMs: 12_000 }, GAP),
    one({ kind: 'pg-immediate', downMs: 5_000 }, GAP),
    // F10 early, with faults inside it, so a late step is what the deadline would cut.
    together(
      GAP,
      [0, { kind: 'xid', cls: 'F10', database: 'postgres', holdMs: 120_000 }],
      [30_000, { kind: 'kill', service: 'command-api', downMs: 0 }],
      [60_000, { kind: 'kill', service: 'gw1', downMs: 5_000 }],
      [90_000, { kind: 'storm', jitterMs: 2_000 }],
    ),
    one({ kind: 'net-delay', routes: PG_AND_NATS, delayMs: 50, jitterMs: 50, forMs: 20_000 }, GAP),
    one({ kind: 'net-stall', routes: ['nats'], forMs: 8_000, thenCut: false }, GAP),
    one({ kind: 'net-stall', routes: ['postgres'], forMs: 8_000, thenCut: true }, GAP),
    one({ kind: 'net-cut', routes: PG_AND_NATS }, GAP),
    one({ kind: 'xid', cls: 'F9', database: 'chat', holdMs: 10_000 }, GAP),
    // ~7 MB per slow socket: more than the kernel buffers on both ends hold, so the gateway must act.
    one({ kind: 'slow-readers', messages: 500, padding: 3_500, forMs: 25_000 }, GAP),
    one({ kind: 'storm', jitterMs: 0 }, GAP),
    one({ kind: 'storm', jitterMs: 3_000 }, GAP),
    together(
      GAP,
      [0, { kind: 'kill', service: 'command-api', downMs: 0 }],
      [1_000, { kind: 'nats-kill', downMs: 3_000 }],
    ),
    together(
      GAP,
      [0, { kind: 'kill', service: 'gw2', downMs: 5_000 }],
      [2_000, { kind: 'pg-immediate', downMs: 5_000 }],
    ),
    together(
      GAP,
      [0, { kind: 'net-stall', routes: ['postgres'], forMs: 6_000, thenCut: true }],
      [2_000, { kind: 'kill', service: 'projector', downMs: 0 }],
      [3_000, { kind: 'kill', service: 'notifier', downMs: 0 }],
    ),
  ],
};

export const QUICK_PROFILE: Profile = {
  name: 'quick',
  budgetMs: 3 * 60_000 - 10_000,
  hardLimitMs: 3 * 60_000,
  endReserveMs: 28_000,
  population: {
    conversations: 40,
    users: 200,
    maxConversationsPerUser: 2,
    canaries: 5,
    slowUsers: 3,
    hotMembers: 3,
  },
  deviceProcesses: 2,
  workload: workload(20),
  warmupMs: 3_000,
  recoveryCapMs: 15_000,
  quiesceMs: 25_000,
  gatewayMaxBackpressure: 64 * 1024,
  steps: [
    together(
      2_000,
      [0, { kind: 'kill', service: 'command-api', downMs: 0 }],
      [500, { kind: 'kill', service: 'notifier', downMs: 0 }],
    ),
    together(
      2_000,
      [0, { kind: 'kill', service: 'projector', downMs: 0 }],
      [500, { kind: 'kill', service: 'gw1', downMs: 3_000 }],
    ),
    one({ kind: 'nats-kill', downMs: 2_000 }, 2_000),
    together(
      2_000,
      [0, { kind: 'nats-freeze', downMs: 9_000 }],
      [0, { kind: 'xid', cls: 'F9', database: 'chat', holdMs: 10_000 }],
    ),
    one({ kind: 'pg-immediate', downMs: 3_000 }, 2_000),
    together(
      2_000,
      [0, { kind: 'net-cut', routes: PG_AND_NATS }],
      [1_000, { kind: 'net-stall', routes: ['postgres'], forMs: 4_000, thenCut: true }],
      [6_000, { kind: 'net-delay', routes: PG_AND_NATS, delayMs: 50, jitterMs: 50, forMs: 5_000 }],
    ),
    together(
      2_000,
      [0, { kind: 'xid', cls: 'F10', database: 'postgres', holdMs: 16_000 }],
      [6_000, { kind: 'kill', service: 'command-api', downMs: 0 }],
      [10_000, { kind: 'storm', jitterMs: 0 }],
    ),
    // Not inside F10: the idle transaction would hold the burst back from every socket alike.
    together(
      2_000,
      [0, { kind: 'slow-readers', messages: 450, padding: 3_500, forMs: 10_000 }],
      [11_000, { kind: 'storm', jitterMs: 2_000 }],
      [12_000, { kind: 'kill', service: 'gw2', downMs: 2_000 }],
    ),
  ],
};
