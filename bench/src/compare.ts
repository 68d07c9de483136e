import { type CpuGroup, HOST_LESS_LOAD, rssBytes } from '@chat/processes';
import type { Context } from './context.js';
import {
  cpuMicrosPerDelivery,
  excessMicrosPerDelivery,
  type FanoutResult,
  generatorBottleneck,
  idleCores,
  loadGroups,
  runFanout,
} from './fanout.js';
import { type Population, populationSockets } from './fixtures.js';
import { connectPool } from './generators.js';
import type { Target } from './load/protocol.js';
import { type Budget, type Metric, round } from './report.js';
import { JWT_SECRET } from './system.js';

// One target (this system, bare uWS, Socket.IO + Redis) measured with the same generator settings:
// the 100 × 50 population on 2 generator processes, the connect burst (connects/s, RSS per socket),
// the idle baseline, a short warm-up, then each offered rate open loop. And the rows and the table
// that put the targets side by side.

const GENERATORS = 2;
// Long enough for V8 to have optimised the delivery path of every target before the measured runs (a
// profile of a gateway showed TurboFan compiling inside a measured window after a 2 s warm-up).
const WARMUP = { rate: 200, durationMs: 3000, drainMs: 5000 };

export type Measured = {
  label: string;
  /** What serves the load, e.g. "2 gateways + command-api + …". */
  setup: string;
  /** `project` rows carry the budgets; `reference` rows are what they are compared with. */
  role: 'project' | 'reference';
  results: FanoutResult[];
  idle: Map<string, number>;
  /** Per-process CPU groups reported (servers, Postgres, NATS, Redis). */
  groups: string[];
  sockets: number;
  connected: number;
  failed: number;
  firstError: string | null;
  connectsPerSec: number | null;
  kibPerSocket: number | null;
};

const rss = (pids: readonly number[]): number => pids.reduce((s, pid) => s + (rssBytes(pid) ?? 0), 0);

export const measureTarget = async (
  ctx: Context,
  o: {
    label: string;
    setup: string;
    role: Measured['role'];
    poolLabel: string;
    population: Population;
    targets: Target[];
    groups: CpuGroup[];
    /** The processes holding the sockets (RSS per socket). */
    serverPids: () => number[];
    rates: readonly number[];
    /** Work to run alongside the measured run at this rate (e.g. lag sampling). */
    during?: (rate: number) => ((signal: AbortSignal) => Promise<void>) | undefined;
  },
): Promise<Measured> => {
  const sockets = populationSockets(o.population, { targets: o.targets.length });
  const rssBefore = rss(o.serverPids());
  const pool = await connectPool({
    label: o.poolLabel,
    count: GENERATORS,
    sockets,
    targets: o.targets,
    jwtSecret: JWT_SECRET,
  });
  try {
    const connected = pool.connected.reduce((s, c) => s + c.ok, 0);
    const failed = pool.connected.reduce((s, c) => s + c.failed, 0);
    const firstError = pool.connected.find((c) => c.firstError)?.firstError ?? null;
    // The generators connect in parallel: the burst lasts as long as the slower one.
    const connectMs = Math.max(...pool.connected.map((c) => c.ms));
    ctx.log(
      `${o.poolLabel}: ${connected} sockets connected in ${Math.round(connectMs)} ms, ${failed} failed`,
    );
    // Measure anyway; every missing socket shows up as lost deliveries, and the row says how many.
    if (failed > 0) ctx.log(`${o.poolLabel}: ${firstError}`);
    const idle = await idleCores(o.groups, loadGroups(pool));
    ctx.log(
      `${o.poolLabel}: idle with the sockets connected, cores: ${[...idle].map(([g, c]) => `${g} ${round(c, 3)}`).join(', ')}`,
    );
    const rssAfter = rss(o.serverPids());
    const members = o.population.membersPerConversation;
    await runFanout(pool, { ...WARMUP, membersPerConversation: members, groups: o.groups });
    const results: FanoutResult[] = [];
    for (const rate of o.rates) {
      const during = o.during?.(rate);
      const r = await runFanout(pool, {
        rate,
        durationMs: ctx.options.durationS * 1000,
        membersPerConversation: members,
        groups: o.groups,
        ...(during ? { during } : {}),
      });
      results.push(r);
      ctx.log(
        `${o.poolLabel} @${rate}: p50 ${r.latency.p50} p99 ${r.latency.p99} ms, lost ${r.lost}, ${Math.round(r.deliveriesPerSec)} deliveries/s, host ${round(hostMicros(r) ?? Number.NaN)} µs/delivery`,
      );
    }
    return {
      label: o.label,
      setup: o.setup,
      role: o.role,
      results,
      idle,
      groups: o.groups.map((g) => g.name),
      sockets: sockets.length,
      connected,
      failed,
      firstError,
      connectsPerSec: connected > 0 && connectMs > 0 ? connected / (connectMs / 1000) : null,
      kibPerSocket: connected > 0 && rssAfter > rssBefore ? (rssAfter - rssBefore) / connected / 1024 : null,
    };
  } finally {
    await pool.close();
  }
};

/** Host-wide CPU µs per delivery: the host's busy CPU less the generators and the orchestrator. */
export const hostMicros = (r: FanoutResult): number | null => cpuMicrosPerDelivery(r, [HOST_LESS_LOAD]);

const hostAboveIdle = (m: Measured, r: FanoutResult): number | null =>
  excessMicrosPerDelivery(r, [HOST_LESS_LOAD], m.idle, r.windowS);

/** Sends offered (sent, or skipped because the socket's buffer was full) × members − unique deliveries. */
const dropped = (r: FanoutResult, members: number): { count: number; share: number } => {
  const expected = (r.run.sent + r.run.skipped) * members;
  const count = Math.max(0, expected - r.delivered);
  return { count, share: expected > 0 ? count / expected : 0 };
};

const dupGap = (r: FanoutResult): string =>
  // Deliveries without seq (Socket.IO) are checked for duplicates by message; gaps cannot be told.
  `${r.run.duplicates}/${r.run.unsequenced > 0 ? '–' : r.run.gaps}`;

const perProcess = (m: Measured, r: FanoutResult): [string, number][] =>
  m.groups.map((g) => [g, round(cpuMicrosPerDelivery(r, [g]) ?? Number.NaN, 1)]);

const num = (n: number | null, digits = 1): Metric => (n === null ? null : round(n, digits));

/**
 * The budget DESIGN.md sets against the Socket.IO + Redis row of the same run: the whole system spends
 * no more host CPU per delivery at the same offered rate.
 */
const hostBudget = (r: FanoutResult, reference: Measured | undefined): Budget[] => {
  const ref = reference?.results.find((x) => x.offeredRate === r.offeredRate);
  const limit = ref ? hostMicros(ref) : null;
  const actual = hostMicros(r);
  return limit === null
    ? []
    : [
        {
          name: `host µs/delivery ≤ ${reference!.label} (${round(limit, 1)})`,
          actual: actual === null ? null : round(actual, 1),
          limit: round(limit, 1),
          kind: 'max',
        },
      ];
};

/** One row per target and rate in the main table, and one compact table of all targets. */
export const reportComparison = (
  ctx: Context,
  measured: readonly Measured[],
  members: number,
  referenceLabel: string,
  caveat?: string,
): void => {
  const reference = measured.find((m) => m.label === referenceLabel);
  for (const m of measured) {
    for (const r of m.results) {
      const d = dropped(r, members);
      ctx.rows.push({
        scenario: 'B1 comparison',
        case: `${m.label} @ ${r.offeredRate} msg/s (${m.setup})`,
        metrics: {
          'p50 ms': r.latency.p50,
          'p99 ms': r.latency.p99,
          'max ms': r.latency.max,
          'deliveries/s': Math.round(r.deliveriesPerSec),
          lost: r.lost,
          dropped: d.count,
          'dropped %': round(d.share * 100, 2),
          'dup/gap': dupGap(r),
          ...(m.failed > 0 ? { 'sockets not connected': m.failed } : {}),
          'host busy %': round(r.hostCores * 100, 0),
          'host µs/delivery (less load)': num(hostMicros(r)),
          'host µs above idle': num(hostAboveIdle(m, r)),
          ...Object.fromEntries(perProcess(m, r).map(([g, us]) => [`${g} µs`, us])),
          'connects/s': num(m.connectsPerSec, 0),
          'KiB/socket': num(m.kibPerSocket, 2),
        },
        budgets: m.role === 'project' ? hostBudget(r, reference) : [],
        generatorCores: r.generatorCores.reduce((a, b) => a + b, 0),
        generatorBottleneck: generatorBottleneck(r),
      });
    }
  }
  const rates = measured[0]?.results.map((r) => r.offeredRate) ?? [];
  const [first, ...others] = rates;
  if (first === undefined) return;
  const at = (m: Measured, rate: number) => m.results.find((r) => r.offeredRate === rate);
  const bound = (r: FanoutResult) => (generatorBottleneck(r) ? ' (generator-bound)' : '');
  ctx.tables.push({
    title: `B1 comparison: ${members}-member conversations, ${measured[0]?.sockets ?? 0} sockets, WebSocket sends, the same generators (${GENERATORS} processes) for every row`,
    header: [
      'target',
      `${first} msg/s p50 / p99 ms`,
      'deliveries/s',
      'lost / dropped',
      'host µs per delivery (above idle)',
      'per process µs per delivery',
      'host busy %',
      ...others.map((rate) => `at ${rate} msg/s`),
      'KiB per idle socket',
      'connects/s',
    ],
    rows: measured.map((m) => {
      const r = at(m, first);
      const us = (n: number | null) => (n === null ? '–' : String(round(n, 1)));
      return [
        `${m.label} (${m.setup})`,
        r ? `${r.latency.p50} / ${r.latency.p99}${bound(r)}` : '–',
        r ? String(Math.round(r.deliveriesPerSec)) : '–',
        r ? `${r.lost} / ${dropped(r, members).count}` : '–',
        r ? `${us(hostMicros(r))} (${us(hostAboveIdle(m, r))})` : '–',
        r
          ? perProcess(m, r)
              .map(([g, v]) => `${g} ${v}`)
              .join(', ')
          : '–',
        r ? String(round(r.hostCores * 100, 0)) : '–',
        ...others.map((rate) => {
          const x = at(m, rate);
          if (!x) return '–';
          const d = dropped(x, members);
          return `${Math.round(x.deliveriesPerSec)} deliveries/s, dropped ${d.count} (${round(d.share * 100, 2)} %), p50 / p99 ${x.latency.p50} / ${x.latency.p99} ms, host ${us(hostMicros(x))} µs${bound(x)}`;
        }),
        m.kibPerSocket === null ? '–' : String(round(m.kibPerSocket, 2)),
        m.connectsPerSec === null ? '–' : String(Math.round(m.connectsPerSec)),
      ];
    }),
    notes:
      (caveat ? `**${caveat}** ` : '') +
      'host µs per delivery = (busy CPU of the whole host from /proc/stat − the generators − the orchestrator) ÷ deliveries, over the measured window (send + drain); in brackets the same less the idle baseline measured with the sockets connected. Per process: utime+stime from /proc/<pid>/stat (Postgres: the bench database’s backends by the service whose session each is, `application_name`, and “shared”: the postmaster, its writers and helpers; NATS: the whole shared server). KiB per idle socket: RSS growth of the processes holding the sockets over the connect burst; connects/s over that burst (authenticated for this system and Socket.IO; bare uWS does no auth). Dropped = offered sends × members − unique deliveries.',
  });
};
