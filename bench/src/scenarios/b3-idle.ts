import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuBetween, currentLogDir, processTree, rssBytes, sampleCpu } from '@chat/processes';
import { startBareServer } from '../bare.js';
import type { Context, Scenario } from '../context.js';
import { connectPool, poolStats } from '../generators.js';
import type { SocketSpec } from '../load/protocol.js';
import { round } from '../report.js';
import { startService } from '../system.js';

// B3: as many authenticated idle sockets on one fresh gateway process as its open-file limit allows.
// Each generator process has the same limit, so the sockets are spread over several generators, and
// over source addresses 127.0.0.2–9 so no (source, destination) pair runs short of ephemeral ports.

const SOCKETS_PER_GENERATOR = 7000;
const SOURCE_ADDRESSES = 8;
const BARE_REFERENCE_SOCKETS = 10_000;

/** `n` idle sockets of distinct users, spread over the source addresses 127.0.0.2–9. */
const idleSockets = (n: number): SocketSpec[] =>
  Array.from({ length: n }, (_, i) => ({
    userId: `idle-${i}`,
    localAddress: `127.0.0.${2 + (i % SOURCE_ADDRESSES)}`,
  }));

/** RSS growth per socket; too few sockets for the growth to exceed GC noise give null, not a negative. */
const rssPerSocket = (before: number, after: number, sockets: number): number | null =>
  sockets > 0 && after > before ? (after - before) / sockets : null;

const fileLimitOf = (pid: number): number => {
  const m = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return m ? Number(m[1]) : 1024;
};

const openFiles = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

export const b3Idle: Scenario = {
  name: 'b3-idle',
  title: 'B3 idle sockets on one gateway',
  run: async (ctx) => {
    const system = await ctx.system();
    const gw = await startService({
      name: 'gateway-idle',
      service: 'ws-gateway',
      env: { ...ctx.serviceEnv(system.db.url), GATEWAY_ID: 'bench-idle', WS_IDLE_TIMEOUT: '240' },
      ...(ctx.options.cpuProf
        ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${join(currentLogDir(), 'profiles', 'gateway-idle')}`] }
        : {}),
    });
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const limit = fileLimitOf(gw.child.pid);
      const inUse = openFiles(gw.child.pid);
      // Keep a little headroom for the gateway's own database / NATS connections and files.
      const target = limit - inUse - 40;
      const rssBefore = rssBytes(gw.child.pid) ?? 0;
      const heapBefore = await jsHeapUsed(gw.port);
      const sockets = idleSockets(target);
      const count = Math.ceil(target / SOCKETS_PER_GENERATOR);
      ctx.log(`b3: gateway fd limit ${limit}, ${inUse} in use → ${target} sockets over ${count} generators`);
      const group = [{ name: 'gateway-idle', pids: () => processTree(gw.child.pid) }];
      const before = sampleCpu(group);
      const startedAt = performance.now();
      const pool = await connectPool({
        label: 'b3',
        count,
        sockets,
        targets: [{ kind: 'gateway', url: `ws://127.0.0.1:${gw.port}/v1/ws` }],
        jwtSecret: ctx.serviceEnv('').JWT_SECRET!,
        concurrency: 50,
        timeoutMs: 30_000,
        // Leave B5 (run after this) its share of the time budget.
        budgetMs: Math.max(20_000, Math.min(100_000, ctx.remainingMs() - 280_000)),
      });
      // Connect time as the generators saw it (their process start-up excluded).
      const connectMs = Math.max(...pool.connected.map((c) => c.ms));
      ctx.log(`b3: pool ready after ${Math.round(performance.now() - startedAt)} ms`);
      const cpu = cpuBetween(before, sampleCpu(group)).get('gateway-idle');
      // The generators run on the same cores: when they burn more CPU per connect than the gateway,
      // connects/s measures them at least as much as the gateway. Their CPU is their own account of
      // the connect phase (tokens are signed before it: a reconnecting client holds its token).
      const generatorCpuMs = pool.connected.reduce((s, c) => s + c.cpuMs, 0);
      try {
        const ok = pool.connected.reduce((s, c) => s + c.ok, 0);
        const failed = pool.connected.reduce((s, c) => s + c.failed, 0);
        await new Promise((r) => setTimeout(r, 3000));
        const open = (await poolStats(pool)).reduce((s, st) => s + st.open, 0);
        const rssAfter = rssBytes(gw.child.pid) ?? 0;
        const heapAfter = await jsHeapUsed(gw.port);
        const perSocket = rssPerSocket(rssBefore, rssAfter, ok);
        ctx.log(
          `b3: ${ok} connected (${failed} failed) in ${Math.round(connectMs)} ms; ${open} open after 3 s`,
        );
        ctx.rows.push({
          scenario: 'B3 idle sockets',
          case: `one gateway, file limit ${limit}`,
          metrics: {
            attempted: target,
            connected: ok,
            failed,
            'open after 3 s': open,
            'connects/s': Math.round(ok / (connectMs / 1000)),
            'connect cpu µs/socket': cpu && ok > 0 ? round((cpu.cpuSeconds * 1e6) / ok, 0) : null,
            'gateway connects per cpu-second':
              cpu && cpu.cpuSeconds > 0 ? round(ok / cpu.cpuSeconds, 0) : null,
            'generator cpu µs/socket': ok > 0 ? round((generatorCpuMs * 1000) / ok, 0) : null,
            'gateway RSS MiB': round(rssAfter / 2 ** 20, 1),
            'KiB/socket': perSocket === null ? null : round(perSocket / 1024, 2),
            'V8 heap-used growth KiB/socket (incl. uncollected garbage)':
              heapBefore !== null && heapAfter !== null && ok > 0
                ? round((heapAfter - heapBefore) / ok / 1024, 2)
                : null,
            generators: count,
            ...(failed > 0
              ? { 'first error': pool.connected.find((c) => c.firstError)?.firstError ?? '' }
              : {}),
          },
          budgets: [
            { name: '≥ 19,000 sockets', actual: open, limit: 19_000, kind: 'min' },
            {
              name: '≤ 2 KiB RSS/socket',
              actual: perSocket === null ? null : round(perSocket / 1024, 2),
              limit: 2,
              kind: 'max',
            },
          ],
          generatorCores: round(generatorCpuMs / connectMs, 2),
          generatorBottleneck: cpu !== undefined && generatorCpuMs / 1000 > cpu.cpuSeconds,
          notes:
            'RSS/socket = (gateway RSS after − before) ÷ sockets; generator **bottleneck**: the generators used more CPU than the gateway on the shared cores',
        });
      } finally {
        await pool.close();
      }
    } finally {
      // Closing ~20,000 sockets and writing their offline records can outlast the default 5 s grace;
      // killed, the gateway would write no --cpu-prof profile (it stops itself within 10 s).
      await gw.child.stop(ctx.options.cpuProf ? 15_000 : undefined);
    }
    await bareReference(ctx);
  },
};

/** The gateway's V8 heap in use (prom-client's default metric), or null when unreadable. */
const jsHeapUsed = async (port: number): Promise<number | null> => {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  const m = /^nodejs_heap_size_used_bytes\s+([0-9.e+]+)/m.exec(text);
  return m ? Number(m[1]) : null;
};

/**
 * The same measurement against bench/bare-uws-server.ts (uWS alone, no auth, no state of ours), on
 * fewer sockets: what an idle socket costs this uWebSockets.js build on this host, so the gateway's
 * figure can be read against it.
 */
const bareReference = async (ctx: Context): Promise<void> => {
  const n = BARE_REFERENCE_SOCKETS;
  const { child: bare, url } = await startBareServer('bare-uws-idle');
  try {
    await new Promise((r) => setTimeout(r, 500));
    const rssBefore = rssBytes(bare.pid) ?? 0;
    const pool = await connectPool({
      label: 'b3-bare',
      count: Math.ceil(n / SOCKETS_PER_GENERATOR),
      sockets: idleSockets(n),
      targets: [{ kind: 'bare', url }],
      jwtSecret: ctx.serviceEnv('').JWT_SECRET!,
      concurrency: 50,
      timeoutMs: 30_000,
      budgetMs: Math.max(10_000, Math.min(40_000, ctx.remainingMs() - 240_000)),
    });
    try {
      const ok = pool.connected.reduce((s, c) => s + c.ok, 0);
      await new Promise((r) => setTimeout(r, 3000));
      const rssAfter = rssBytes(bare.pid) ?? 0;
      const perSocket = rssPerSocket(rssBefore, rssAfter, ok);
      ctx.log(
        `b3: bare uWS reference, ${ok} sockets, ${perSocket === null ? '–' : round(perSocket / 1024, 2)} KiB each`,
      );
      ctx.rows.push({
        scenario: 'B3 idle sockets',
        case: 'bare uWS reference (same generators)',
        metrics: {
          connected: ok,
          'server RSS MiB': round(rssAfter / 2 ** 20, 1),
          'KiB/socket': perSocket === null ? null : round(perSocket / 1024, 2),
        },
        budgets: [],
        generatorCores: null,
        generatorBottleneck: false,
        notes:
          'bench/bare-uws-server.ts: the uWebSockets.js build alone, per-socket cost to compare the gateway with',
      });
    } finally {
      await pool.close();
    }
  } finally {
    await bare.stop();
  }
};
