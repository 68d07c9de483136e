import type { Context, Scenario, System } from '../context.js';
import {
  cpuMicrosPerDelivery,
  excessMicrosPerDelivery,
  type FanoutResult,
  generatorBottleneck,
  idleCores,
  runFanout,
} from '../fanout.js';
import { populationSockets } from '../fixtures.js';
import { connectPool } from '../generators.js';
import { type LagSeries, sampleLag } from '../lag.js';
import { type Budget, round } from '../report.js';
import { JWT_SECRET, systemCpuGroups } from '../system.js';

// B1: 5,000 sockets (100 conversations × 50 members) over 2 gateways; every message sent as a WS
// `send` frame by a member and delivered to all 50 members (the sender's own socket included).
// B6: projector and notifier lag sampled from their /metrics during the 1,000 msg/s run.

/** Socket.IO with the Redis adapter spends 21–31 µs per delivery only relaying (DESIGN.md). */
const SOCKETIO_REDIS_US = 21;

const fanoutRow = (
  ctx: Context,
  system: System,
  r: FanoutResult,
  idle: Map<string, number>,
  socketsMissing: number,
) => {
  const groups = systemCpuGroups(system.all(), system.db.name).map((g) => g.name);
  const systemUs = cpuMicrosPerDelivery(r, groups);
  const budgets: Budget[] = [{ name: 'lost = 0', actual: r.lost, limit: 0, kind: 'max' }];
  if (r.offeredRate === 200) {
    budgets.push(
      { name: 'p50 ≤ 5 ms', actual: r.latency.p50, limit: 5, kind: 'max' },
      { name: 'p99 ≤ 25 ms', actual: r.latency.p99, limit: 25, kind: 'max' },
    );
  }
  budgets.push({
    name: `system < ${SOCKETIO_REDIS_US} µs/delivery (Socket.IO+Redis relay)`,
    actual: systemUs === null ? null : round(systemUs, 1),
    limit: SOCKETIO_REDIS_US,
    kind: 'max',
  });
  const perProcess = Object.fromEntries(
    groups.map((g) => [`${g} µs`, round(cpuMicrosPerDelivery(r, [g]) ?? Number.NaN, 2)]),
  );
  ctx.rows.push({
    scenario: 'B1 end-to-end',
    case: `${r.offeredRate} msg/s × 50 members, 2 gateways`,
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
      ...(socketsMissing > 0 ? { 'sockets not connected (counted as lost)': socketsMissing } : {}),
      'ack p99 ms': r.ack.p99,
      'host busy %': round(r.hostCores * 100, 0),
      'system µs/delivery': systemUs === null ? null : round(systemUs, 1),
      'system µs above idle': round(excessMicrosPerDelivery(r, groups, idle, r.windowS) ?? Number.NaN, 1),
      'system idle cpu %': round([...idle.values()].reduce((a, b) => a + b, 0) * 100, 0),
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

const run = async (ctx: Context, rates: number[], withLag: boolean) => {
  const system = await ctx.system();
  const started = performance.now();
  const pool = await connectPool({
    label: 'b1',
    count: 2,
    sockets: populationSockets(system.population, { targets: system.gateways.length }),
    targets: system.gateways.map((g) => ({
      kind: 'gateway' as const,
      url: `ws://127.0.0.1:${g.port}/v1/ws`,
    })),
    jwtSecret: JWT_SECRET,
  });
  try {
    const ok = pool.connected.reduce((s, c) => s + c.ok, 0);
    const failed = pool.connected.reduce((s, c) => s + c.failed, 0);
    ctx.log(`b1: ${ok} sockets connected in ${Math.round(performance.now() - started)} ms, ${failed} failed`);
    // Measure anyway; every missing socket shows up as lost deliveries, and the row says how many.
    if (failed > 0) ctx.log(`b1: ${pool.connected.find((c) => c.firstError)?.firstError}`);
    const members = system.population.membersPerConversation;
    const groups = systemCpuGroups(system.all(), system.db.name);
    const idle = await idleCores(groups);
    await runFanout(pool, {
      rate: 100,
      durationMs: 2000,
      drainMs: 5000,
      membersPerConversation: members,
      groups,
    });
    for (const rate of rates) {
      let lag: Promise<[LagSeries[], LagSeries[]]> | undefined;
      const r = await runFanout(pool, {
        rate,
        durationMs: ctx.options.durationS * 1000,
        membersPerConversation: members,
        groups,
        during:
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
      ctx.log(
        `b1 @${rate}: p50 ${r.latency.p50} p99 ${r.latency.p99} ms, lost ${r.lost}, ${Math.round(r.deliveriesPerSec)} deliveries/s`,
      );
      fanoutRow(ctx, system, r, idle, failed);
      if (lag) {
        const [projector, notifier] = await lag;
        lagRow(ctx, 'projector', projector);
        lagRow(ctx, 'notifier', notifier);
      }
    }
  } finally {
    await pool.close();
  }
};

export const b1EndToEnd: Scenario = {
  name: 'b1-e2e',
  title: 'B1 end-to-end (and B6 lag at 1,000 msg/s)',
  run: (ctx) => run(ctx, [200, 1000], true),
};

export const b6Lag: Scenario = {
  name: 'b6-lag',
  title: 'B6 projection and notifier lag during B1 at 1,000 msg/s',
  run: (ctx) => run(ctx, [1000], true),
};
