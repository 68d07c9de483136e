import { processTree } from '@chat/processes';
import { startBareServer } from '../bare.js';
import { type Measured, measureTarget, reportComparison } from '../compare.js';
import type { Context, Scenario, System } from '../context.js';
import {
  cpuMicrosPerDelivery,
  excessMicrosPerDelivery,
  type FanoutResult,
  generatorBottleneck,
} from '../fanout.js';
import { makePopulation } from '../fixtures.js';
import { type LagSeries, sampleLag } from '../lag.js';
import { type Budget, round } from '../report.js';
import { startSocketIoReference } from '../socketio.js';
import { JWT_SECRET, systemCpuGroups } from '../system.js';

// B1: 5,000 sockets (100 conversations × 50 members) over 2 gateways; every message sent as a WS
// `send` frame by a member and delivered to all 50 members (the sender's own socket included).
// Before the system starts, the same population, generators and rates are run against what teams
// would pick instead — bare uWebSockets.js (one process) and Socket.IO + the Redis adapter (two
// processes, a private redis-server) — and one table puts the three side by side.
// B6: projector and notifier lag sampled from their /metrics during the 1,000 msg/s run.

const PROJECT = 'this system';
const BARE = 'bare uWS';
const SOCKETIO = 'Socket.IO + Redis';
/** The references are skipped (and the scenario fails) when less of the run's budget is left. */
const REFERENCES_MIN_BUDGET_MS = 300_000;

const fanoutRow = (ctx: Context, system: System, m: Measured, r: FanoutResult) => {
  const groups = m.groups;
  const systemUs = cpuMicrosPerDelivery(r, groups);
  const budgets: Budget[] = [{ name: 'lost = 0', actual: r.lost, limit: 0, kind: 'max' }];
  if (r.offeredRate === 200) {
    budgets.push(
      { name: 'p50 ≤ 5 ms', actual: r.latency.p50, limit: 5, kind: 'max' },
      { name: 'p99 ≤ 25 ms', actual: r.latency.p99, limit: 25, kind: 'max' },
    );
  }
  if (r.offeredRate === 1000)
    budgets.push({ name: 'p99 ≤ 100 ms', actual: r.latency.p99, limit: 100, kind: 'max' });
  const perProcess = Object.fromEntries(
    groups.map((g) => [`${g} µs`, round(cpuMicrosPerDelivery(r, [g]) ?? Number.NaN, 2)]),
  );
  const idleOfGroups = groups.reduce((s, g) => s + (m.idle.get(g) ?? 0), 0);
  ctx.rows.push({
    scenario: 'B1 end-to-end',
    case: `${r.offeredRate} msg/s × ${system.population.membersPerConversation} members, ${system.gateways.length} gateways`,
    metrics: {
      'p50 ms': r.latency.p50,
      'p90 ms': r.latency.p90,
      'p99 ms': r.latency.p99,
      'max ms': r.latency.max,
      'deliveries/s': Math.round(r.deliveriesPerSec),
      sent: r.run.sent,
      acked: r.run.acked,
      'ack errors': r.run.ackErrors,
      lost: r.lost,
      'dup/gap': `${r.run.duplicates}/${r.run.gaps}`,
      'sockets closed': r.run.closed,
      ...(m.failed > 0 ? { 'sockets not connected (counted as lost)': m.failed } : {}),
      'ack p99 ms': r.ack.p99,
      'host busy %': round(r.hostCores * 100, 0),
      'system µs/delivery': systemUs === null ? null : round(systemUs, 1),
      'system µs above idle': round(excessMicrosPerDelivery(r, groups, m.idle, r.windowS) ?? Number.NaN, 1),
      'system idle cpu %': round(idleOfGroups * 100, 0),
      ...perProcess,
    },
    budgets,
    generatorCores: r.generatorCores.reduce((a, b) => a + b, 0),
    generatorBottleneck: generatorBottleneck(r),
    ...(r.run.firstAckError ? { notes: `first ack error: ${r.run.firstAckError.slice(0, 120)}` } : {}),
  });
};

const lagRow = (ctx: Context, service: string, series: LagSeries[]) => {
  // The services' own lag histogram when there is one (store → commit), else the worst lag gauge.
  const ms = series.filter((s) => s.unit === 'ms' && s.p99 !== null && s.metric.startsWith(service));
  const histogram = ms.find((s) => s.kind === 'histogram');
  const worst = histogram ? histogram.p99 : ms.length > 0 ? Math.max(...ms.map((s) => s.p99!)) : null;
  ctx.rows.push({
    scenario: 'B6 lag',
    case: `${service} during B1 @ 1,000 msg/s`,
    metrics: Object.fromEntries(
      series.length > 0
        ? series.map((s) => [
            s.metric,
            `p99 ${round(s.p99 ?? Number.NaN, 1)} ${s.unit}, max ${round(s.max ?? Number.NaN, 1)}`,
          ])
        : [['lag', 'no lag metric exposed on /metrics']],
    ),
    budgets:
      service === 'projector'
        ? [{ name: 'projection lag p99 ≤ 100 ms', actual: worst, limit: 100, kind: 'max' }]
        : [],
    generatorCores: null,
    generatorBottleneck: false,
  });
};

/**
 * Bare uWS and Socket.IO + Redis on a population of the same shape, one after the other, each stopped
 * (by PID) before the next starts. A reference that fails is reported and does not stop the others.
 */
const measureReferences = async (
  ctx: Context,
  rates: readonly number[],
): Promise<{ measured: Measured[]; errors: string[] }> => {
  const measured: Measured[] = [];
  const errors: string[] = [];
  if (ctx.remainingMs() < REFERENCES_MIN_BUDGET_MS) {
    return { measured, errors: ['references skipped: the run’s time budget is too short'] };
  }
  const population = makePopulation(100, 50);
  const attempt = async (label: string, fn: () => Promise<Measured>) => {
    try {
      measured.push(await fn());
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      ctx.log(`b1: ${label} reference FAILED: ${msg}`);
      errors.push(`${label}: ${msg.split('\n')[0]}`);
    }
  };
  await attempt(BARE, async () => {
    const { child, url } = await startBareServer('b1-bare-uws');
    try {
      const group = { name: 'bare-uws', pids: () => processTree(child.pid) };
      return await measureTarget(ctx, {
        label: BARE,
        setup: '1 process',
        role: 'reference',
        poolLabel: 'b1-bare',
        population,
        targets: [{ kind: 'bare', url }],
        groups: [group],
        serverPids: group.pids,
        rates,
      });
    } finally {
      await child.stop();
    }
  });
  await attempt(SOCKETIO, async () => {
    const ref = await startSocketIoReference({ population, jwtSecret: JWT_SECRET, log: ctx.log });
    try {
      ctx.log(
        `b1: Socket.IO reference up: ${ref.servers.map((s) => `${s.name}/pid ${s.pid}`).join(', ')}, redis :${ref.redis.port}/pid ${ref.redis.child.pid}`,
      );
      return await measureTarget(ctx, {
        label: SOCKETIO,
        setup: `${ref.servers.length} processes + redis-server`,
        role: 'reference',
        poolLabel: 'b1-socketio',
        population,
        targets: ref.targets,
        groups: ref.groups,
        serverPids: ref.serverPids,
        rates,
      });
    } finally {
      await ref.stop();
    }
  });
  return { measured, errors };
};

const run = async (ctx: Context, rates: number[], withLag: boolean, withReferences: boolean) => {
  // The references first: unless an earlier scenario started it, the system is not running yet, so its
  // idle services take no CPU from them.
  const alongside = withReferences && ctx.systemRunning();
  const references =
    withReferences && !ctx.options.noReferences
      ? await measureReferences(ctx, rates)
      : { measured: [], errors: [] };
  const system = await ctx.system();
  const groups = systemCpuGroups(system.all(), system.db.name, system.sessions);
  let lag: Promise<[LagSeries[], LagSeries[]]> | undefined;
  const project = await measureTarget(ctx, {
    label: PROJECT,
    setup: `${system.gateways.length} gateways + command-api, projector, notifier, Postgres, NATS`,
    role: 'project',
    poolLabel: 'b1',
    population: system.population,
    targets: system.gateways.map((g) => ({
      kind: 'gateway' as const,
      url: `ws://127.0.0.1:${g.port}/v1/ws`,
    })),
    groups,
    serverPids: () => system.gateways.flatMap((g) => processTree(g.child.pid)),
    rates,
    during: (rate) =>
      withLag && rate === 1000
        ? async (signal) => {
            const url = (port: number | undefined) => `http://127.0.0.1:${port}/metrics`;
            lag = Promise.all([
              system.projector ? sampleLag(url(system.projector.port), signal) : Promise.resolve([]),
              system.notifier ? sampleLag(url(system.notifier.port), signal) : Promise.resolve([]),
            ]);
            await lag;
          }
        : undefined,
  });
  for (const r of project.results) fanoutRow(ctx, system, project, r);
  if (lag) {
    const [projector, notifier] = await lag;
    lagRow(ctx, 'projector', projector);
    lagRow(ctx, 'notifier', notifier);
  }
  if (withReferences) {
    reportComparison(
      ctx,
      [project, ...references.measured],
      system.population.membersPerConversation,
      SOCKETIO,
      alongside
        ? 'The references ran while this system (started by an earlier scenario) sat idle on the same host: its idle CPU is inside their host figures. Run B1 first (as `pnpm bench` does) for clean references.'
        : undefined,
    );
    if (references.errors.length > 0) throw new Error(`B1 references: ${references.errors.join('; ')}`);
  }
};

export const b1EndToEnd: Scenario = {
  name: 'b1-e2e',
  title: 'B1 end-to-end vs bare uWS and Socket.IO + Redis (and B6 lag at 1,000 msg/s)',
  run: (ctx) => run(ctx, ctx.options.rates ?? [200, 1000], true, true),
};

export const b6Lag: Scenario = {
  name: 'b6-lag',
  title: 'B6 projection and notifier lag during B1 at 1,000 msg/s',
  run: (ctx) => run(ctx, [1000], true, false),
};
