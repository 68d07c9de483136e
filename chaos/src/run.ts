import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { READ_MODEL_CHECKPOINT } from '@chat/db';
import { createDataKeyStore, createEventStore, type EventStore } from '@chat/eventstore';
import { createLogger, DEV_DATA_KEY_MASTER } from '@chat/platform';
import { sleep } from '@chat/retry';
import { seeded, signToken, waitFor } from '@chat/testkit';
import pg from 'pg';
import { now } from './history/clock.js';
import { HistoryWriter } from './history/file.js';
import { healEverything, type NemesisContext } from './nemesis/faults.js';
import { estimateMs, runNemesis } from './nemesis/nemesis.js';
import type { Profile } from './profile.js';
import { takeSnapshot } from './snapshot/snapshot.js';
import { readCheckpoints } from './system/consumers.js';
import { startSampler } from './system/sampler.js';
import { DATABASE, type System, startSystem } from './system/system.js';
import { type CommandSpec, httpTransport, issue } from './workload/commands.js';
import { type DevicePool, startDevicePool } from './workload/pool.js';
import { makePopulation, type Population } from './workload/population.js';
import type { UnresolvedCommand } from './workload/protocol.js';

// One chaos run, start to end: the system on private infrastructure, the population and its sockets,
// the load and the nemesis, then the heal, the settling of every open command, the catch-up, and the
// snapshot for the checker. Returns the history files; `main.ts` checks and reports.

export type RunOptions = {
  profile: Profile;
  seed: number;
  /** Where the history files go. */
  dir: string;
  /** Private data (Postgres cluster, NATS store); removed by the caller. */
  tempDir: string;
  startedAt: number;
  log: (msg: string) => void;
  /** Registers what must be stopped if the run is interrupted. */
  onCleanup: (fn: () => Promise<void>) => void;
};

export type RunResult = {
  historyFiles: string[];
  sockets: number;
  conversations: number;
  timings: Record<string, number>;
};

/** Runs `tasks` with at most `concurrency` at once. */
const inParallel = async <T>(items: readonly T[], concurrency: number, task: (item: T) => Promise<void>) => {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await task(items[next++]!);
    }),
  );
};

const createConversations = async (
  system: System,
  population: Population,
  tokenOf: (u: string) => Promise<string>,
) => {
  await inParallel(population.conversations, 16, async (c) => {
    for (let attempt = 1; ; attempt++) {
      const res = await fetch(`${system.apiUrl}/v1/conversations`, {
        method: 'POST',
        headers: { authorization: `Bearer ${await tokenOf(c.creator)}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          conversationId: c.id,
          kind: 'group',
          title: c.hot ? 'hot' : 'chaos',
          members: c.members.filter((m) => m !== c.creator),
        }),
      }).catch((err: unknown) => ({ ok: false, status: 0, text: async () => String(err) }));
      if (res.ok) return;
      if (attempt >= 5)
        throw new Error(`could not create conversation ${c.id}: ${res.status} ${await res.text()}`);
      await sleep(500);
    }
  });
};

/** Every consumer at the log's head (polled over the run's own connection). */
const consumersAtHead = async (pool: pg.Pool, store: EventStore): Promise<boolean> => {
  const [head, checkpoints] = await Promise.all([store.headPosition(), readCheckpoints(pool)]);
  const positions = Object.values(checkpoints);
  return positions.length > 0 && positions.every((p) => p >= head);
};

/** Whether `probe` came true within `timeoutMs` (polled). */
const waitUntil = (probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> =>
  waitFor(() => probe().catch(() => false), { timeoutMs, intervalMs: 250 }).then(
    () => true,
    () => false,
  );

export const runChaos = async (options: RunOptions): Promise<RunResult> => {
  const { profile, log } = options;
  const timings: Record<string, number> = {};
  const mark = (name: string) => {
    timings[name] = Math.round((Date.now() - options.startedAt) / 100) / 10;
  };
  const history = new HistoryWriter(join(options.dir, 'orchestrator.jsonl'));
  const phase = (name: string, detail?: string) => {
    history.write({ k: 'phase', t: now(), name, ...(detail ? { detail } : {}) });
    log(`── ${name}${detail ? `: ${detail}` : ''}`);
  };
  phase('setup', `profile ${profile.name}, seed ${options.seed}`);
  const system = await startSystem({
    dir: options.tempDir,
    history,
    log,
    gatewayMaxBackpressure: profile.gatewayMaxBackpressure,
    onStop: (stop) => options.onCleanup(stop),
  });
  const pool = new pg.Pool({ connectionString: system.databaseUrl, max: 4, connectionTimeoutMillis: 2000 });
  pool.on('error', () => {});
  // The run's own store and replays log only what would stop them (a stopped Postgres is the point).
  const logger = createLogger('chaos', 'fatal');
  const store = createEventStore({
    // The services encrypt text with their data keys (development master key here): read through them.
    dataKeys: createDataKeyStore({ databaseUrl: system.databaseUrl, master: DEV_DATA_KEY_MASTER, logger }),
    databaseUrl: system.databaseUrl,
    logger,
    scavengeIntervalMs: 24 * 3600_000,
  });
  options.onCleanup(async () => {
    await store.close().catch(() => undefined);
    await pool.end().catch(() => undefined);
  });
  const tokens = new Map<string, Promise<string>>();
  const tokenOf = (user: string) => {
    let t = tokens.get(user);
    if (!t) {
      t = signToken(user, { secret: system.jwtSecret, expiresIn: 6 * 3600 });
      tokens.set(user, t);
    }
    return t;
  };

  const population = makePopulation(profile.population, seeded(options.seed));
  await createConversations(system, population, tokenOf);
  for (const d of population.devices) history.write({ k: 'device', t: now(), ...d });
  if (!(await waitUntil(() => consumersAtHead(pool, store), 60_000)))
    throw new Error('the consumers did not catch up with the conversations created');
  log(`${population.conversations.length} conversations created and projected`);
  mark('setup: system and conversations');

  const sampler = startSampler({ system, pool, store, history, everyMs: 500, metricsEveryMs: 5_000 });
  const devices: DevicePool & { started: { open: number; devices: number; ms: number } } =
    await startDevicePool({
      processes: profile.deviceProcesses,
      dir: options.dir,
      population,
      apiUrl: system.apiUrl,
      gatewayUrls: system.gatewayUrls,
      jwtSecret: system.jwtSecret,
      settings: profile.workload,
      connectConcurrency: 32,
    });
  options.onCleanup(() => devices.finish());
  log(
    `${devices.started.open}/${devices.started.devices} sockets open in ${(devices.started.ms / 1000).toFixed(1)} s`,
  );
  mark('setup: sockets');

  // The run's own commands (removals of canaries, the hot burst), recorded like the devices' ones.
  const http = httpTransport(system.apiUrl, profile.workload.commandTimeoutsMs);
  const orchestratorOps: Promise<void>[] = [];
  const unresolved: UnresolvedCommand[] = [];
  let opCount = 0;
  const runOp = (spec: Omit<CommandSpec, 'op' | 'token'>, label: string): Promise<void> => {
    const op = `o.${label}.${++opCount}`;
    const p = tokenOf(spec.user).then((token) =>
      issue(
        { ...spec, op, token },
        {
          history,
          phase: 'run',
          maxAttempts: profile.workload.maxAttempts,
          maxAgeMs: profile.workload.maxCommandAgeMs,
          transport: () => ({ via: 'http', send: http }),
        },
      ).then(({ outcome, attempts }) => {
        if (outcome.k !== 'ok') unresolved.push({ ...spec, op, attempts });
      }),
    );
    orchestratorOps.push(p);
    return p;
  };
  const hotBurst = async (messages: number, padding: number) => {
    const sender = population.hot.creator;
    const list = Array.from({ length: messages }, (_, i) => i);
    await inParallel(list, 4, () =>
      runOp(
        { cmd: 'send', user: sender, conv: population.hot.id, mid: randomUUID(), body: 'hot ', pad: padding },
        'hot',
      ),
    );
  };

  phase('run');
  const runStarted = Date.now();
  const deadline = options.startedAt + profile.budgetMs - profile.endReserveMs;
  await devices.send({ type: 'writing', on: true });
  // Canaries leave at random moments while the nemesis works, some during faults.
  const leaves: string[] = [];
  const leaveTimers: NodeJS.Timeout[] = [];
  const span =
    Math.max(10_000, Math.min(deadline - runStarted - 20_000, estimateMs(profile.steps, profile.warmupMs))) -
    profile.warmupMs;
  for (const c of population.canaries) {
    for (const conv of c.convs) {
      const at = profile.warmupMs + Math.random() * span;
      leaveTimers.push(
        setTimeout(() => {
          leaves.push(`${conv}|${c.user}`);
          void runOp({ cmd: 'leave', user: c.user, conv }, 'leave');
        }, at),
      );
    }
  }
  const projectorBehind = async () => {
    const [head, checkpoints] = await Promise.all([store.headPosition(), readCheckpoints(pool)]);
    const position = checkpoints[READ_MODEL_CHECKPOINT];
    return position !== undefined && position < head;
  };
  const ctx: NemesisContext = { system, devices, sampler, history, log, hotBurst, projectorBehind };
  const aborted = new AbortController();
  options.onCleanup(async () => aborted.abort());
  await runNemesis(ctx, profile.steps, {
    warmupMs: profile.warmupMs,
    recoveryCapMs: profile.recoveryCapMs,
    deadline,
    signal: aborted.signal,
  });
  mark('run: nemesis done');

  // What is left of the budget bounds every wait from here on; the checks and the report need the rest.
  const endBy = options.startedAt + profile.budgetMs - 40_000;
  const left = () => Math.max(1_000, endBy - Date.now());

  phase('heal');
  for (const t of leaveTimers) clearTimeout(t);
  await healEverything(ctx);
  const whole = await waitUntil(() => system.supervisor.allReady(), Math.min(60_000, left() / 4));
  await devices.send({ type: 'writing', on: false });
  log(`every service ${whole ? 'ready' : 'NOT ready after 60 s'}; writes stopped`);

  phase('settle');
  const settleMs =
    profile.workload.maxCommandAgeMs + Math.max(...profile.workload.commandTimeoutsMs) + 10_000;
  await waitUntil(async () => (await devices.status()).inFlight === 0, settleMs);
  await Promise.race([Promise.allSettled(orchestratorOps), sleep(settleMs)]);
  mark('settle');

  const open = (await devices.send({ type: 'unresolved' })).flatMap((r) =>
    r.type === 'unresolved' ? r.ops : [],
  );
  const toResolve = [...open, ...unresolved];
  phase('resolve', `${toResolve.length} commands without a success`);
  await inParallel(toResolve, 8, async (u) => {
    const token = await tokenOf(u.user);
    const { attempts, ...spec } = u;
    await issue(
      { ...spec, token },
      {
        history,
        phase: 'resolve',
        firstAttempt: attempts + 1,
        maxAttempts: 8,
        maxAgeMs: Math.min(30_000, left() / 4),
        transport: () => ({ via: 'http', send: http }),
      },
    );
  });
  mark('resolve');

  phase('quiesce');
  const heads: Record<string, number> = {};
  for (const c of population.conversations) heads[c.id] = await store.streamRevision(`conversation-${c.id}`);
  let lastStatus = '';
  const quiet = await waitUntil(
    async () => {
      const status = await devices.status(heads, leaves);
      const atHead = await consumersAtHead(pool, store);
      lastStatus = `consumers ${atHead ? 'at' : 'behind'} the head, sockets ${status.open}/${status.devices}, ${status.behind} behind ${status.behindSample.join('; ')}`;
      return atHead && status.behind === 0 && status.open === status.devices;
    },
    Math.min(profile.quiesceMs, left() / 2),
  );
  log(`${quiet ? 'quiet' : `NOT quiet after ${profile.quiesceMs / 1000} s`}: ${lastStatus}`);
  mark('quiesce');
  await sampler.stop();
  await devices.finish();
  await system.supervisor.stopAll();
  phase('snapshot');
  await history.close();

  const snapshot = new HistoryWriter(join(options.dir, 'snapshot.jsonl'));
  await system.pg.createDatabase(`${DATABASE}_notifier_replay`);
  await takeSnapshot({
    store,
    pool,
    replayDatabaseUrl: system.pg.url(`${DATABASE}_notifier_replay`),
    history: snapshot,
    logger,
    log,
    timeoutMs: 120_000,
  });
  await snapshot.close();
  mark('snapshot');
  await store.close();
  await pool.end();
  await system.stop();
  return {
    historyFiles: [history.file, ...devices.historyFiles, snapshot.file],
    sockets: population.devices.length,
    conversations: population.conversations.length,
    timings,
  };
};
