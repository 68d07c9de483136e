import { type CpuGroup, cpuBetween, processTree, sampleCpu, spawnTs } from '@chat/processes';
import type { Context, Scenario, System } from '../context.js';
import { generatorGroups } from '../fanout.js';
import { populationSockets } from '../fixtures.js';
import { connectPool, type MergedRun, mergeRuns } from '../generators.js';
import { mergeHistograms, summarize } from '../histogram.js';
import type { HttpLoadCommand, HttpLoadReply } from '../load/http-generator.js';
import type { ClosedLoopCommand, RunReply } from '../load/protocol.js';
import { round } from '../report.js';
import { storeAppendsPerSecond } from '../store-reference.js';
import { JWT_SECRET, systemCpuGroups } from '../system.js';

// B4: SendMessage throughput and latency of the command path, closed loop with 16 and 64 concurrent
// senders: over HTTP (autocannon) and over WS `send` frames (forwarded by the gateway over NATS). The
// budget (DESIGN.md) is a ratio: with the rest of the system running, at least half of what the event
// store alone appends in the same run (single-event appends from 16 writers, as `pnpm bench:store`).

const CONCURRENCY = [16, 64];
const BUDGET_SHARE_OF_STORE = 0.5;

const systemCores = (cpu: Map<string, { cores: number }>, groups: CpuGroup[]) =>
  round(groups.reduce((s, g) => s + (cpu.get(g.name)?.cores ?? 0), 0) * 100, 0);

/** Each process's share of a core over the window, largest first: where the command path's CPU goes. */
const cpuSplit = (cpu: Map<string, { cores: number }>, groups: CpuGroup[]) =>
  groups
    .map((g) => [g.name, round((cpu.get(g.name)?.cores ?? 0) * 100, 0)] as const)
    .sort((a, b) => b[1] - a[1])
    .map(([name, pct]) => `${name} ${pct}`)
    .join(', ');

const http = async (
  ctx: Context,
  system: System,
  connections: number,
  /** The store's single-event appends/s in this run; the row is judged against half of it. */
  storeRate: number | null,
  note = '',
) => {
  const child = spawnTs(`b4-http-${connections}`, 'bench/src/load/http-generator.ts', { ipc: true });
  const groups = systemCpuGroups(system.all(), system.db.name, system.sessions);
  const gen = { name: 'gen', pids: () => processTree(child.pid) };
  // Let the generator sign its tokens before the measured window starts.
  await new Promise((r) => setTimeout(r, 1500));
  const before = sampleCpu([...groups, gen]);
  const reply = new Promise<HttpLoadReply>((resolve, reject) => {
    child.process.once('message', (m: HttpLoadReply) => resolve(m));
    child.process.once('exit', (code) =>
      reject(new Error(`http generator exited ${code}:\n${child.tail()}`)),
    );
  });
  child.process.send({
    url: `http://127.0.0.1:${system.api.port}`,
    jwtSecret: JWT_SECRET,
    conversations: system.population.conversations,
    connections,
    durationS: ctx.options.durationS,
  } satisfies HttpLoadCommand);
  const r = await reply;
  const cpu = cpuBetween(before, sampleCpu([...groups, gen]));
  await child.stop();
  const perSecond = r.created / r.durationS;
  ctx.log(
    `b4 http ×${connections}${note}: ${Math.round(perSecond)}/s, p99 ${r.p99} ms, codes ${JSON.stringify(r.statusCodes)}`,
  );
  const genCores = cpu.get('gen')?.cores ?? 0;
  ctx.rows.push({
    scenario: 'B4 command path',
    case: `HTTP, ${connections} concurrent senders${note}`,
    metrics: {
      'SendMessage/s': Math.round(perSecond),
      'p50 ms': r.p50,
      'p99 ms': r.p99,
      'max ms': r.max,
      'non-2xx': r.non2xx,
      errors: r.errors,
      'system cpu %': systemCores(cpu, groups),
      'cpu % by process': cpuSplit(cpu, groups),
      ...(r.non2xx > 0 ? { codes: JSON.stringify(r.statusCodes) } : {}),
    },
    budgets:
      storeRate === null
        ? []
        : [
            {
              name: `≥ half the store's ${Math.round(storeRate)} appends/s in this run`,
              actual: Math.round(perSecond),
              limit: Math.round(storeRate * BUDGET_SHARE_OF_STORE),
              kind: 'min',
            },
          ],
    generatorCores: genCores,
    generatorBottleneck: genCores >= 0.75,
  });
};

/**
 * The write path on its own: the log's consumers (projector with the relay, notifier) are stopped with
 * SIGSTOP — by the PIDs the bench started — for the duration of `run`, then continued, and catch up.
 * On this 2-core host they otherwise take half the CPU the appends need (in production they run on
 * other machines).
 */
const withConsumersPaused = async <T>(system: System, run: () => Promise<T>): Promise<T> => {
  const pids = [system.projector, system.notifier].flatMap((s) => (s ? processTree(s.child.pid) : []));
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  try {
    return await run();
  } finally {
    for (const pid of pids) process.kill(pid, 'SIGCONT');
  }
};

const ws = async (ctx: Context, system: System) => {
  // Ten members per conversation connect (1,000 sockets): every send also fans out to 10 sockets.
  const pool = await connectPool({
    label: 'b4-ws',
    count: 1,
    sockets: populationSockets(system.population, { targets: system.gateways.length, memberLimit: 10 }),
    targets: system.gateways.map((g) => ({
      kind: 'gateway' as const,
      url: `ws://127.0.0.1:${g.port}/v1/ws`,
    })),
    jwtSecret: JWT_SECRET,
  });
  try {
    const plan = pool.sockets[0]!.map((s, socket) => ({ socket, conversationId: s.conversationIds![0]! }));
    const groups = systemCpuGroups(system.all(), system.db.name, system.sessions);
    const gens = generatorGroups(pool);
    for (const concurrency of CONCURRENCY) {
      const before = sampleCpu([...groups, ...gens]);
      const replies = await Promise.all(
        pool.generators.map((g) =>
          g.request<RunReply>(
            {
              type: 'closedLoop',
              runId: `b4ws${concurrency}${Date.now().toString(36)}`,
              concurrency,
              durationMs: ctx.options.durationS * 1000,
              plan,
            } satisfies ClosedLoopCommand,
            ctx.options.durationS * 1000 + 30_000,
          ),
        ),
      );
      const after = sampleCpu([...groups, ...gens]);
      const cpu = cpuBetween(before, after);
      const run: MergedRun = mergeRuns(replies);
      const ack = summarize(mergeHistograms(run.ackHistograms));
      const perSecond = run.acked / ((after.at - before.at) / 1000);
      const genCores = gens.reduce((s, g) => s + (cpu.get(g.name)?.cores ?? 0), 0);
      ctx.log(
        `b4 ws ×${concurrency}: ${Math.round(perSecond)}/s, p99 ${ack.p99} ms, errors ${run.ackErrors}`,
      );
      ctx.rows.push({
        scenario: 'B4 command path',
        case: `WS send, ${concurrency} concurrent senders`,
        metrics: {
          'SendMessage/s': Math.round(perSecond),
          'p50 ms': ack.p50,
          'p99 ms': ack.p99,
          'max ms': ack.max,
          errors: run.ackErrors,
          'system cpu %': systemCores(cpu, groups),
        },
        budgets: [],
        generatorCores: genCores,
        generatorBottleneck: genCores >= 0.75,
        ...(run.firstAckError ? { notes: `first error: ${run.firstAckError.slice(0, 120)}` } : {}),
      });
    }
  } finally {
    await pool.close();
  }
};

export const b4Commands: Scenario = {
  name: 'b4-commands',
  title: 'B4 command path (HTTP and WS)',
  run: async (ctx) => {
    const system = await ctx.system();
    const storeRate = await storeAppendsPerSecond(ctx.options.durationS);
    ctx.log(`b4 event store alone: ${Math.round(storeRate)} single-event appends/s (16 writers)`);
    ctx.rows.push({
      scenario: 'B4 command path',
      case: 'event store alone, single-event appends from 16 writers (pnpm bench:store), own database',
      metrics: { 'appends/s': Math.round(storeRate) },
      budgets: [],
      generatorCores: null,
      generatorBottleneck: false,
    });
    for (const c of CONCURRENCY) await http(ctx, system, c, storeRate);
    // Not judged: the budget is for the command path with the rest of the system running.
    await withConsumersPaused(system, () =>
      http(ctx, system, CONCURRENCY.at(-1)!, null, ', projector + notifier paused (write path alone)'),
    );
    await ws(ctx, system);
  },
};
