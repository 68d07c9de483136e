import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import {
  currentLogDir,
  firstLineOf,
  machine,
  REPO_ROOT,
  runningChildren,
  setLogDir,
  stopAll,
} from '@chat/processes';
import type { Context, Options, Scenario, System } from './context.js';
import { createConversations, makePopulation, waitForMemberships } from './fixtures.js';
import { profileText, summarizeProfiles } from './profile.js';
import { BENCH_DIR, markdownTable, type Row, type Table, tableText, writeResults } from './report.js';
import { b1EndToEnd, b6Lag } from './scenarios/b1-e2e.js';
import { b2Fanout } from './scenarios/b2-fanout.js';
import { b3Idle } from './scenarios/b3-idle.js';
import { b4Commands } from './scenarios/b4-commands.js';
import { b5Rebuild } from './scenarios/b5-rebuild.js';
import {
  createDatabase,
  dropCreatedDatabases,
  JWT_SECRET,
  migrate,
  NATS_URL,
  type RunningService,
  serviceExists,
  startService,
  watchSessionNames,
} from './system.js';

// `pnpm bench [scenario…] [--duration=s] [--events=n] [--cpu-prof] [--no-references] [--rates=200,1000]`: starts what each scenario needs
// as child processes, measures, stops everything it started (by PID), drops its databases, and writes
// bench/results/<timestamp>.json plus a markdown table.

const SCENARIOS: Scenario[] = [b1EndToEnd, b2Fanout, b4Commands, b3Idle, b5Rebuild, b6Lag];
/** b6 is measured inside b1's 1,000 msg/s run; alone it runs only that part. */
const DEFAULT_ORDER = ['b1-e2e', 'b2-fanout', 'b4-commands', 'b3-idle', 'b5-rebuild'];

const parseArgs = (argv: string[]): { names: string[]; options: Options } => {
  const options: Options = {
    durationS: 12,
    rebuildEvents: 1_000_000,
    cpuProf: false,
    budgetS: 840,
    without: [],
    noReferences: false,
    rates: undefined,
  };
  const names: string[] = [];
  for (const a of argv) {
    if (a === '--') continue;
    const [k, v] = a.split('=');
    if (k === '--duration') options.durationS = Number(v);
    else if (k === '--events') options.rebuildEvents = Number(v);
    else if (k === '--cpu-prof') options.cpuProf = true;
    else if (k === '--budget') options.budgetS = Number(v);
    else if (k === '--rates') options.rates = (v ?? '').split(',').map(Number);
    else if (k === '--no-references') options.noReferences = true;
    else if (k === '--without') options.without = (v ?? '').split(',').filter(Boolean);
    else if (a.startsWith('--')) throw new Error(`unknown flag ${a}`);
    else names.push(a);
  }
  for (const n of names) {
    if (!SCENARIOS.some((s) => s.name === n || s.name.split('-')[0] === n))
      throw new Error(`unknown scenario "${n}"; one of ${SCENARIOS.map((s) => s.name).join(', ')}`);
  }
  return { names: names.length > 0 ? names : DEFAULT_ORDER, options };
};

const main = async () => {
  const { names, options } = parseArgs(process.argv.slice(2));
  const timestamp = new Date().toISOString().replace(/[:.]/g, '-');
  setLogDir(join('/tmp', `chat-bench-${timestamp}`));
  const started = performance.now();
  const log = (msg: string) =>
    console.error(`[bench ${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}`);
  const rows: Row[] = [];
  const tables: Table[] = [];
  const loadAtStart = loadavg().map((l) => Math.round(l * 100) / 100);
  const prefix = `bench_${randomBytes(4).toString('hex')}`;
  const serviceEnv = (databaseUrl: string): Record<string, string> => ({
    DATABASE_URL: databaseUrl,
    NATS_URL,
    NATS_SUBJECT_PREFIX: prefix,
    JWT_SECRET,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'development',
  });

  let system: Promise<System> | null = null;
  const startSystem = async (): Promise<System> => {
    log('starting the system: database, migrations, services');
    const db = await createDatabase('sys');
    await migrate(db.url);
    const env = serviceEnv(db.url);
    const profileDir = join(currentLogDir(), 'profiles');
    const nodeArgs = (name: string) =>
      options.cpuProf ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, name)}`] : undefined;
    const start = (name: string, service: Parameters<typeof startService>[0]['service'], extra = {}) => {
      const args = nodeArgs(name);
      return startService({ name, service, env: { ...env, ...extra }, ...(args ? { nodeArgs: args } : {}) });
    };
    // In parallel: each service spends seconds compiling its TypeScript at start.
    const startGateway = (id: string) => start(`gateway-${id}`, 'ws-gateway', { GATEWAY_ID: `bench-${id}` });
    const [projector, notifier, api, gatewayA, gatewayB] = await Promise.all([
      serviceExists('projector') && !options.without.includes('projector')
        ? start('projector', 'projector')
        : null,
      serviceExists('notifier') && !options.without.includes('notifier')
        ? start('notifier', 'notifier')
        : null,
      start('command-api', 'command-api'),
      startGateway('a'),
      startGateway('b'),
    ]);
    const gateways: RunningService[] = [gatewayA, gatewayB];
    log(
      `services up: ${[projector, notifier, api, ...gateways]
        .filter(Boolean)
        .map((s) => `${s!.name}:${s!.port}/pid ${s!.child.pid}`)
        .join(', ')}`,
    );
    const population = makePopulation(100, 50);
    await createConversations(population, `http://127.0.0.1:${api.port}`, JWT_SECRET);
    await waitForMemberships(population, db.url);
    log('100 conversations × 50 members created and projected');
    const all = () => [api, ...gateways, ...(projector ? [projector] : []), ...(notifier ? [notifier] : [])];
    const sessions = await watchSessionNames(db.url);
    return { db, api, gateways, projector, notifier, population, sessions, all };
  };
  const stopSystem = async () => {
    if (!system) return;
    const running = await system.catch(() => null);
    system = null;
    await running?.sessions.stop();
    await Promise.all((running?.all() ?? []).map((s) => s.child.stop()));
  };
  const ctx: Context = {
    options,
    rows,
    tables,
    log,
    serviceEnv,
    remainingMs: () => options.budgetS * 1000 - (performance.now() - started),
    systemRunning: () => system !== null,
    system: () => {
      if (!system) {
        const starting = startSystem();
        system = starting;
        // A failed start is not cached: the next scenario tries again (after stopping what did start).
        starting.catch(async () => {
          if (system === starting) system = null;
          await Promise.all(runningChildren().map((c) => c.stop()));
        });
      }
      return system;
    },
  };

  let stopping = false;
  const cleanup = async () => {
    if (stopping) return;
    stopping = true;
    log(`stopping ${runningChildren().length} processes started by the bench`);
    await system?.then((s) => s.sessions.stop()).catch(() => {});
    await stopAll();
    await dropCreatedDatabases();
  };
  const failures: string[] = [];
  let reported = false;
  const report = () => {
    if (reported) return;
    reported = true;
    const seconds = Math.round((performance.now() - started) / 1000);
    const profiles = options.cpuProf ? summarizeProfiles(join(currentLogDir(), 'profiles')) : [];
    for (const p of profiles) console.error(profileText(p));
    const file = writeResults(timestamp, {
      timestamp,
      scenarios: names,
      options,
      seconds,
      machine: machine(),
      versions: {
        postgres: firstLineOf(`psql -At -h 127.0.0.1 -U postgres -c "show server_version"`),
        nats: firstLineOf('nats-server --version'),
        commit: firstLineOf(`git -C ${REPO_ROOT} rev-parse --short HEAD`),
      },
      logs: currentLogDir(),
      loadAverage: { atStart: loadAtStart, atEnd: loadavg().map((l) => Math.round(l * 100) / 100) },
      failures,
      rows,
      tables,
      profiles,
    });
    const m = machine();
    console.log(
      `\n## pnpm bench — ${timestamp}\n\n${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, open-file limit ${m.openFileLimit}, Node ${m.node}; ${seconds} s; host load average ${loadAtStart[0]} at start, ${loadavg()[0]?.toFixed(2)} at end\n`,
    );
    console.log(markdownTable(rows));
    for (const t of tables) console.log(`\n${tableText(t)}`);
    console.log(`\nresults: ${file.replace(`${BENCH_DIR}/`, 'bench/')}; service logs: ${currentLogDir()}`);
    if (failures.length > 0) process.exitCode = 1;
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: cleaning up`);
      failures.push(`interrupted by ${sig}`);
      void cleanup()
        .then(report)
        .finally(() => process.exit(130));
    });
  }

  try {
    for (const name of names) {
      if (stopping) break;
      const scenario = SCENARIOS.find((s) => s.name === name || s.name.split('-')[0] === name)!;
      if (ctx.remainingMs() < 30_000) {
        log(`── ${scenario.title}: skipped, the run's time budget is spent`);
        failures.push(`${scenario.name}: skipped (time budget)`);
        continue;
      }
      // The rebuild has its own database: the idle system would only take CPU from it.
      if (scenario.name === 'b5-rebuild') await stopSystem();
      log(`── ${scenario.title} (${Math.round(ctx.remainingMs() / 1000)} s of the budget left)`);
      try {
        await scenario.run(ctx);
      } catch (err) {
        const msg = err instanceof Error ? err.message : String(err);
        failures.push(`${scenario.name}: ${msg}`);
        log(`${scenario.name} FAILED: ${msg}`);
        rows.push({
          scenario: scenario.title,
          case: 'failed',
          metrics: { error: msg.split('\n')[0]!.slice(0, 200) },
          budgets: [],
          generatorCores: null,
          generatorBottleneck: false,
        });
      }
    }
  } finally {
    await cleanup();
  }
  report();
};

main().catch(async (err: unknown) => {
  console.error(err);
  await stopAll();
  await dropCreatedDatabases();
  process.exit(1);
});
