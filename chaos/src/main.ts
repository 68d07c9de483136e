import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { firstLineOf, machine, REPO_ROOT, runningChildren, setLogDir, stopAll } from '@chat/processes';
import { checkHistory } from './checker/index.js';
import { mergeHistories, readHistoryFile } from './history/file.js';
import { DEFAULT_PROFILE, QUICK_PROFILE } from './profile.js';
import { checkTable, classTable, faultTable, violationText } from './report.js';
import { runChaos } from './run.js';

// `pnpm chaos [--quick] [--seed=N]`: a fault run against the whole system on private infrastructure,
// then the checks. Exits 0 when every invariant held, 1 with the history excerpts when one did not,
// 2 when the run itself could not be completed. Everything it started is stopped by PID, also on
// Ctrl-C; its temp dir is removed; the history and results stay in chaos/results/<timestamp>/.

const args = process.argv.slice(2).filter((a) => a !== '--');
for (const a of args) {
  if (a !== '--quick' && !a.startsWith('--seed=')) {
    console.error(`unknown argument ${a}; usage: pnpm chaos [--quick] [--seed=N]`);
    process.exit(2);
  }
}
const profile = args.includes('--quick') ? QUICK_PROFILE : DEFAULT_PROFILE;
const seed = Number(args.find((a) => a.startsWith('--seed='))?.split('=')[1] ?? Date.now() % 1_000_000);
const startedAt = Date.now();
const timestamp = new Date(startedAt).toISOString().replace(/[:.]/g, '-');
const resultsDir = join(REPO_ROOT, 'chaos', 'results', timestamp);
mkdirSync(resultsDir, { recursive: true });
setLogDir(join(resultsDir, 'logs'));
const tempDir = mkdtempSync('/tmp/chaos-');
// The private cluster runs as the postgres user, which must reach its data dir inside.
chmodSync(tempDir, 0o755);
const log = (msg: string) =>
  console.error(`[chaos ${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${msg}`);

const cleanups: (() => Promise<void>)[] = [];
let cleaning: Promise<void> | undefined;
const cleanup = (): Promise<void> => {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => log(`cleanup: ${String(err)}`));
    await stopAll();
    rmSync(tempDir, { recursive: true, force: true });
  })();
  return cleaning;
};
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    log(`${sig}: stopping the ${runningChildren().length} processes this run started`);
    void cleanup().finally(() => process.exit(130));
  });
}
// The bound of the whole command, whatever happens inside: past it everything is stopped.
const watchdog = setTimeout(() => {
  log(`the ${profile.hardLimitMs / 60_000} min limit is reached: stopping`);
  void cleanup().finally(() => process.exit(2));
}, profile.hardLimitMs);
watchdog.unref();

const main = async (): Promise<number> => {
  const loadAtStart = loadavg().map((l) => Math.round(l * 100) / 100);
  log(
    `profile ${profile.name}, seed ${seed}, host load ${loadAtStart.join(' ')}; results in ${relative(REPO_ROOT, resultsDir)}`,
  );
  const run = await runChaos({
    profile,
    seed,
    dir: resultsDir,
    tempDir,
    startedAt,
    log,
    onCleanup: (fn) => cleanups.push(fn),
  });
  await cleanup();
  log('checking the history');
  const history = mergeHistories(run.historyFiles.map(readHistoryFile));
  const out = createWriteStream(join(resultsDir, 'history.jsonl'));
  for (const e of history) out.write(`${JSON.stringify(e)}\n`);
  await new Promise((r) => out.end(r));
  for (const f of run.historyFiles) rmSync(f, { force: true });
  const verdict = checkHistory(history);
  const seconds = Math.round((Date.now() - startedAt) / 1000);
  const loadAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  const m = machine();
  writeFileSync(
    join(resultsDir, 'results.json'),
    `${JSON.stringify(
      {
        timestamp,
        profile: profile.name,
        seed,
        seconds,
        machine: m,
        loadAverage: { atStart: loadAtStart, atEnd: loadAtEnd },
        versions: {
          commit: firstLineOf(`git -C ${REPO_ROOT} rev-parse --short HEAD`),
          postgres: firstLineOf('ls /usr/lib/postgresql | sort -V | tail -1'),
          nats: firstLineOf('/usr/sbin/nats-server --version'),
        },
        population: { sockets: run.sockets, conversations: run.conversations },
        timings: run.timings,
        historyEntries: history.length,
        ok: verdict.ok,
        classes: verdict.recovery.classes,
        faults: verdict.recovery.faults,
        peakReconnectsPerSecond: verdict.recovery.peakReconnectsPerSecond,
        reconnects: verdict.recovery.reconnects,
        slowConsumerCloses: verdict.recovery.slowConsumerCloses,
        peakRss: verdict.recovery.peakRss,
        unplannedExits: verdict.recovery.unplannedExits,
        checks: verdict.checks,
      },
      null,
      2,
    )}\n`,
  );
  const exits = verdict.recovery.unplannedExits;
  console.log(
    [
      `\n## pnpm chaos${profile.name === 'quick' ? ' --quick' : ''} — ${timestamp}`,
      `\n${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}; ${seconds} s; ${run.sockets} sockets, ${run.conversations} conversations, seed ${seed}; host load average ${loadAtStart[0]} at start, ${loadAtEnd[0]} at end`,
      `\n### Per fault class\n\n${classTable(verdict.recovery.classes)}`,
      `\nReconnects: ${verdict.recovery.reconnects} (peak ${verdict.recovery.peakReconnectsPerSecond}/s); slow consumers closed (1013): ${verdict.recovery.slowConsumerCloses}; peak RSS: ${Object.entries(
        verdict.recovery.peakRss,
      )
        .map(([name, bytes]) => `${name} ${Math.round(bytes / 2 ** 20)} MiB`)
        .join(
          ', ',
        )}. Unplanned process exits: ${exits.length === 0 ? 'none' : exits.map((e) => `${e.name} (${e.code})`).join(', ')}.`,
      `\n### Faults\n\n${faultTable(verdict.recovery.faults)}`,
      `\n### Checks\n\n${checkTable(verdict.checks)}`,
      violationText(verdict),
      `\nhistory: ${relative(REPO_ROOT, join(resultsDir, 'history.jsonl'))} (${history.length} entries); results: ${relative(REPO_ROOT, join(resultsDir, 'results.json'))}; service logs: ${relative(REPO_ROOT, join(resultsDir, 'logs'))}`,
      verdict.ok ? '\nEvery invariant held.' : '\nINVARIANTS VIOLATED (see the excerpts above).',
    ].join('\n'),
  );
  return verdict.ok ? 0 : 1;
};

main()
  .then((code) => {
    process.exitCode = code;
  })
  .catch(async (err: unknown) => {
    log(`the run failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanup();
    process.exitCode = 2;
  })
  .finally(() => clearTimeout(watchdog));
