import { type CpuGroup, processTree } from '@chat/processes';
import { startBareServer } from '../bare.js';
import type { Context, Scenario } from '../context.js';
import {
  cpuMicrosPerDelivery,
  cpuMicrosPerFrame,
  excessMicrosPerDelivery,
  type FanoutResult,
  generatorBottleneck,
  idleCores,
  runFanout,
} from '../fanout.js';
import { makePopulation, type Population, populationSockets } from '../fixtures.js';
import { connectPool } from '../generators.js';
import type { Target } from '../load/protocol.js';
import { round } from '../report.js';
import { JWT_SECRET, serviceExists } from '../system.js';

const SEARCH_RATES = [500, 1000, 2000, 4000];
const SEARCH_STEP_MS = 6000;
const P99_LIMIT_MS = 50;

type CaseResult = { at200: FanoutResult; maxRate: number; steps: FanoutResult[]; idle: Map<string, number> };

const passes = (r: FanoutResult): boolean =>
  r.latency.p99 <= P99_LIMIT_MS && r.lost === 0 && r.run.ackErrors === 0 && r.run.skipped === 0;

/** The same 100 × 50 population on one server: 200 msg/s measured, then a bounded search upwards. */
const measure = async (
  ctx: Context,
  label: string,
  target: Target,
  population: Population,
  server: CpuGroup,
): Promise<CaseResult> => {
  const pool = await connectPool({
    label,
    count: 2,
    sockets: populationSockets(population),
    targets: [target],
    jwtSecret: JWT_SECRET,
  });
  try {
    const failed = pool.connected.reduce((s, c) => s + c.failed, 0);
    if (failed > 0) throw new Error(`${label}: ${failed} sockets failed: ${pool.connected[0]?.firstError}`);
    const members = population.membersPerConversation;
    const groups = [server];
    const idle = await idleCores(groups);
    await runFanout(pool, {
      rate: 100,
      durationMs: 2000,
      drainMs: 5000,
      membersPerConversation: members,
      groups,
    });
    const at200 = await runFanout(pool, {
      rate: 200,
      durationMs: ctx.options.durationS * 1000,
      membersPerConversation: members,
      groups,
    });
    ctx.log(
      `${label} @200: p99 ${at200.latency.p99} ms, ${round(cpuMicrosPerDelivery(at200, [server.name]) ?? 0)} µs/delivery`,
    );
    let maxRate = passes(at200) ? 200 : 0;
    const steps: FanoutResult[] = [];
    for (const rate of SEARCH_RATES) {
      if (maxRate < 200) break;
      const r = await runFanout(pool, {
        rate,
        durationMs: SEARCH_STEP_MS,
        membersPerConversation: members,
        groups,
      });
      steps.push(r);
      ctx.log(
        `${label} @${rate}: p99 ${r.latency.p99} ms, lost ${r.lost}, gen ${r.generatorCores.map((c) => round(c, 2))}`,
      );
      if (!passes(r)) break;
      maxRate = rate;
    }
    return { at200, maxRate, steps, idle };
  } finally {
    await pool.close();
  }
};

const row = (ctx: Context, label: string, c: CaseResult, server: string) => {
  const r = c.at200;
  ctx.rows.push({
    scenario: 'B2 fan-out',
    case: `${label} @ 200 msg/s`,
    metrics: {
      'µs cpu/delivery': round(cpuMicrosPerDelivery(r, [server]) ?? Number.NaN, 2),
      'µs above idle': round(excessMicrosPerDelivery(r, [server], c.idle, r.windowS) ?? Number.NaN, 2),
      'idle cpu %': round((c.idle.get(server) ?? 0) * 100, 1),
      'deliveries/s': Math.round(r.deliveriesPerSec),
      'frames per delivery': r.delivered > 0 ? round(r.run.frames / r.delivered, 2) : null,
      'µs cpu/frame': round(cpuMicrosPerFrame(r, [server]) ?? Number.NaN, 2),
      'p50 ms': r.latency.p50,
      'p99 ms': r.latency.p99,
      lost: r.lost,
      // A socket the server closed mid-run (1013 slow consumer) misses the rest of the run: its
      // deliveries count as lost here, as a client would resume them.
      'sockets closed': r.run.closed,
      'sent/acked/errors': `${r.run.sent}/${r.run.acked}/${r.run.ackErrors}`,
      'ack p99 ms': r.ack.p99,
      'host busy %': round(r.hostCores * 100, 0),
      'server cpu %': round((r.cpu.get(server)?.cores ?? 0) * 100, 0),
    },
    budgets: [],
    generatorCores: r.generatorCores.reduce((a, b) => a + b, 0),
    generatorBottleneck: generatorBottleneck(r),
    ...(r.run.firstAckError ? { notes: `first ack error: ${r.run.firstAckError.slice(0, 120)}` } : {}),
  });
};

const searchRow = (ctx: Context, label: string, c: CaseResult, members: number) => {
  const last = c.steps[c.steps.length - 1] ?? c.at200;
  ctx.rows.push({
    scenario: 'B2 fan-out',
    case: `${label} max rate with p99 ≤ ${P99_LIMIT_MS} ms`,
    metrics: {
      'msg/s': c.maxRate,
      'deliveries/s': c.maxRate * members,
      'first failing step': passes(last)
        ? 'none'
        : `${last.offeredRate} msg/s: p99 ${last.latency.p99} ms, lost ${last.lost}, errors ${last.run.ackErrors}`,
    },
    budgets: [],
    generatorCores: last.generatorCores.reduce((a, b) => a + b, 0),
    generatorBottleneck: generatorBottleneck(last),
    notes: `search ${[200, ...SEARCH_RATES].join('/')} msg/s, ${SEARCH_STEP_MS / 1000} s each, stops at the first failing step`,
  });
};

export const b2Fanout: Scenario = {
  name: 'b2-fanout',
  title: 'B2 gateway vs bare uWebSockets.js',
  run: async (ctx) => {
    const withGateway = serviceExists('ws-gateway') && serviceExists('command-api');
    const system = withGateway ? await ctx.system() : null;
    const population = system?.population ?? makePopulation(100, 50);

    const { child: bare, url: bareUrl } = await startBareServer('bare-uws');
    let bareResult: CaseResult;
    try {
      const group = { name: 'bare-uws', pids: () => processTree(bare.pid) };
      bareResult = await measure(ctx, 'b2-bare', { kind: 'bare', url: bareUrl }, population, group);
    } finally {
      await bare.stop();
    }
    row(ctx, 'bare uWS', bareResult, 'bare-uws');

    if (!system) {
      ctx.rows.push({
        scenario: 'B2 fan-out',
        case: 'ws-gateway',
        metrics: { skipped: 'services/ws-gateway or command-api not present yet' },
        budgets: [],
        generatorCores: null,
        generatorBottleneck: false,
      });
      searchRow(ctx, 'bare uWS', bareResult, population.membersPerConversation);
      return;
    }
    const gw = system.gateways[0]!;
    const group = { name: gw.name, pids: () => processTree(gw.child.pid) };
    const gwResult = await measure(
      ctx,
      'b2-gateway',
      { kind: 'gateway', url: `ws://127.0.0.1:${gw.port}/v1/ws` },
      population,
      group,
    );
    row(ctx, 'ws-gateway', gwResult, gw.name);
    const bareUs = cpuMicrosPerDelivery(bareResult.at200, ['bare-uws']);
    const gwUs = cpuMicrosPerDelivery(gwResult.at200, [gw.name]);
    const ratio = bareUs && gwUs ? gwUs / bareUs : null;
    const bareFrameUs = cpuMicrosPerFrame(bareResult.at200, ['bare-uws']);
    const gwFrameUs = cpuMicrosPerFrame(gwResult.at200, [gw.name]);
    const bareExcess = excessMicrosPerDelivery(
      bareResult.at200,
      ['bare-uws'],
      bareResult.idle,
      bareResult.at200.windowS,
    );
    const gwExcess = excessMicrosPerDelivery(
      gwResult.at200,
      [gw.name],
      gwResult.idle,
      gwResult.at200.windowS,
    );
    ctx.rows.push({
      scenario: 'B2 fan-out',
      case: 'gateway ÷ bare, CPU per delivery',
      metrics: {
        ratio: ratio === null ? null : round(ratio, 2),
        'ratio above idle': bareExcess && gwExcess ? round(gwExcess / bareExcess, 2) : null,
        'ratio per frame sent': bareFrameUs && gwFrameUs ? round(gwFrameUs / bareFrameUs, 2) : null,
      },
      budgets: [
        {
          name: 'gateway ≤ 1.5× bare',
          actual: ratio === null ? null : round(ratio, 2),
          limit: 1.5,
          kind: 'max',
        },
      ],
      generatorCores: null,
      generatorBottleneck: generatorBottleneck(gwResult.at200) || generatorBottleneck(bareResult.at200),
    });
    searchRow(ctx, 'bare uWS', bareResult, population.membersPerConversation);
    searchRow(ctx, 'ws-gateway', gwResult, population.membersPerConversation);
  },
};
