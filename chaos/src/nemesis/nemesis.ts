import { sleep } from '@chat/retry';
import { now } from '../history/clock.js';
import { describeFault, type FaultSpec, faultClass, type NemesisContext, runFault } from './faults.js';

// The nemesis: runs the profile's steps one after the other — a step is one fault or several
// overlapping ones, each started at its offset — waits after each step until the system is whole
// again (bounded), then leaves a fault-free pause. A step that would not end before the run's deadline
// is skipped, and the skip is recorded.

export type Step = { faults: { atMs: number; spec: FaultSpec }[]; gapMs: number };

/** How long a fault stays on once injected (restart times not included). */
export const holdMs = (spec: FaultSpec): number => {
  switch (spec.kind) {
    case 'kill':
    case 'nats-kill':
    case 'nats-freeze':
    case 'pg-immediate':
      return spec.downMs;
    case 'net-delay':
    case 'net-stall':
    case 'slow-readers':
      return spec.forMs;
    case 'xid':
      return spec.holdMs;
    case 'net-cut':
    case 'storm':
      return 0;
    default: {
      const never: never = spec;
      throw new Error(`unknown fault ${JSON.stringify(never)}`);
    }
  }
};

/** Roughly how long the steps take when nothing is skipped (recoveries of a few seconds). */
export const estimateMs = (steps: readonly Step[], warmupMs: number): number =>
  warmupMs +
  steps.reduce(
    (sum, step) => sum + Math.max(...step.faults.map((f) => f.atMs + holdMs(f.spec))) + step.gapMs + 3_000,
    0,
  );

/** Waits until every service is ready, every consumer reached `head` and every socket is open again. */
const waitRecovered = async (
  ctx: NemesisContext,
  head: string | undefined,
  capMs: number,
): Promise<string> => {
  const started = Date.now();
  let last = '';
  while (Date.now() - started < capMs) {
    const ready = await ctx.system.supervisor.allReady();
    const sample = ctx.sampler.latest();
    const target = head ?? sample?.head;
    const checkpoints = Object.values(sample?.checkpoints ?? {});
    const consumers = target !== undefined && checkpoints.length > 0 && checkpoints.every((p) => p >= target);
    const status = await ctx.devices.status().catch(() => undefined);
    const sockets = status !== undefined && status.open === status.devices;
    last = `services ${ready ? 'ready' : 'not ready'}, consumers ${consumers ? 'at' : 'behind'} the heal's head, sockets ${status?.open}/${status?.devices}`;
    if (ready && consumers && sockets) return `whole after ${((Date.now() - started) / 1000).toFixed(1)} s`;
    await sleep(500);
  }
  return `not whole after ${capMs / 1000} s: ${last}`;
};

export const runNemesis = async (
  ctx: NemesisContext,
  steps: readonly Step[],
  options: { warmupMs: number; recoveryCapMs: number; deadline: number; signal: AbortSignal },
): Promise<void> => {
  await sleep(options.warmupMs);
  let n = 0;
  for (const [index, step] of steps.entries()) {
    if (options.signal.aborted) return;
    const length = Math.max(...step.faults.map((f) => f.atMs + holdMs(f.spec))) + step.gapMs + 5_000;
    if (Date.now() + length > options.deadline) {
      const what = step.faults.map((f) => describeFault(f.spec)).join(' + ');
      ctx.log(`step ${index + 1} skipped (the run's deadline): ${what}`);
      ctx.history.write({ k: 'phase', t: now(), name: 'step skipped', detail: what });
      continue;
    }
    const faults = step.faults.map((f) => ({ ...f, id: `f${++n}` }));
    await Promise.all(faults.map((f) => sleep(f.atMs).then(() => runFault(ctx, f.id, f.spec))));
    const head = ctx.sampler.latest()?.head;
    const detail = await waitRecovered(ctx, head, options.recoveryCapMs);
    const t = now();
    for (const f of faults) {
      ctx.history.write({
        k: 'fault',
        t,
        id: f.id,
        cls: faultClass(f.spec),
        name: describeFault(f.spec),
        phase: 'recovered',
        detail,
      });
    }
    ctx.log(`step ${index + 1}: ${detail}`);
    await sleep(step.gapMs);
  }
};
