/**
 * Notifier cost when it has nothing to write: `npx tsx services/notifier/bench/quiet-groups.ts`
 * (~1 min). The shape of `pnpm bench b1`: 100 groups × 50 members (level `mentions`, the group
 * default), messages that address nobody, offered at a fixed rate through the encrypting event store
 * (bodies encrypted at rest, as the command-api writes them). The real notifier process reads them and
 * creates no record. Reports the notifier's CPU (utime+stime from /proc/<pid>/stat) per message, its
 * batches, and the statements it ran per batch (pg_stat_statements of this database, less the writer's
 * appends). Env: BENCH_SECONDS (default 10), BENCH_RATE (default 200), plus any NOTIFIER_* setting;
 * BENCH_CPU_PROF_DIR=<dir> runs the notifier under `--cpu-prof` (profiles written there on exit).
 */

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { migrateDataKeys } from '@chat/db';
import { type ChatEvent, conversationStream } from '@chat/events';
import { createDataKeyStore, createEventStore, migrateEventStore } from '@chat/eventstore';
import { migrateNotifier } from '@chat/notifications';
import { createLogger, DEV_DATA_KEY_MASTER } from '@chat/platform';
import { createTestDatabase, freePort, natsUrl, startService, testSubjectPrefix } from '@chat/testkit';
import pg from 'pg';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const RATE = Number(process.env.BENCH_RATE ?? 200);
const GROUPS = 100;
const MEMBERS = 50;

const db = await createTestDatabase('notifquiet');
const pool = new pg.Pool({ connectionString: db.url, max: 4 });
await migrateEventStore(pool);
await migrateDataKeys(pool);
await migrateNotifier(pool);
await pool.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
const logger = createLogger('bench', 'warn');
const store = createEventStore({
  databaseUrl: db.url,
  logger,
  maxConnections: 8,
  dataKeys: createDataKeyStore({ databaseUrl: db.url, master: DEV_DATA_KEY_MASTER, logger }),
});
const notifierEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => k.startsWith('NOTIFIER_')),
) as Record<string, string>;
const port = await freePort();
const env = {
  DATABASE_URL: db.url,
  NATS_URL: natsUrl(),
  NATS_SUBJECT_PREFIX: testSubjectPrefix(),
  PORT: String(port),
  LOG_LEVEL: 'warn',
  ...notifierEnv,
};
const profileDir = process.env.BENCH_CPU_PROF_DIR;
const notifier = profileDir
  ? await startProfiled(env, profileDir)
  : await startService({
      name: 'notifier',
      entry: 'services/notifier',
      env,
      ready: { url: `http://127.0.0.1:${port}/readyz` },
      timeoutMs: 120_000,
    });

/** The notifier under `--cpu-prof` (flags NODE_OPTIONS refuses): written to `dir` when it exits. */
async function startProfiled(env: Record<string, string>, dir: string) {
  const child = spawn(
    process.execPath,
    ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--import', 'tsx', 'services/notifier/src/main.ts'],
    { env: { ...process.env, ...env }, stdio: 'inherit' },
  );
  const exited = new Promise((r) => child.once('exit', r));
  for (;;) {
    const ok = await fetch(`http://127.0.0.1:${env.PORT}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    pid: child.pid as number,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** utime and stime in ms of every thread of the notifier (the main thread by name). */
const threadCpu = (): Map<string, { user: number; system: number }> => {
  const out = new Map<string, { user: number; system: number }>();
  for (const tid of readdirSync(`/proc/${notifier.pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${notifier.pid}/task/${tid}/stat`, 'utf8');
      const name = `${tid === String(notifier.pid) ? 'main' : 'thread'} ${tid}`;
      const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      const e = out.get(name) ?? { user: 0, system: 0 };
      e.user += Number(f[11]) * 10;
      e.system += Number(f[12]) * 10;
      out.set(name, e);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
};
const cpuMs = (): number => {
  const fields = readFileSync(`/proc/${notifier.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat (11 and 12 after "pid (comm) ").
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
};
const metric = async (name: string) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
};
const meta = { userId: 'bench', correlationId: randomUUID(), causationId: null, schemaVersion: 1 };
const append = (conversationId: string, events: ChatEvent[]) =>
  store.append(
    conversationStream(conversationId),
    events.map((e) => ({ id: randomUUID(), type: e.type, data: e.data, metadata: meta })),
    'any',
  );
const caughtUp = async () => {
  const head = await store.headPosition();
  for (;;) {
    const { rows } = await pool.query<{ position: string }>(
      `SELECT position FROM consumers.checkpoints WHERE name = 'notifier'`,
    );
    if ((rows[0]?.position ?? '') >= head) return;
    await new Promise((r) => setTimeout(r, 20));
  }
};

try {
  const groups: string[] = [];
  for (let g = 0; g < GROUPS; g++) {
    const conversationId = randomUUID();
    const members = Array.from({ length: MEMBERS }, (_, i) => `g${g}u${i}`);
    await append(conversationId, [
      {
        type: 'ConversationStarted',
        data: { conversationId, kind: 'group', title: `group ${g}`, createdBy: members[0]!, members },
      },
    ]);
    groups.push(conversationId);
  }
  // Warm up: one message per group, so every conversation is in the notifier's cache as in a long run.
  await Promise.all(
    groups.map((c, g) =>
      append(c, [
        {
          type: 'MessageSent',
          data: {
            conversationId: c,
            messageId: randomUUID(),
            senderId: `g${g}u1`,
            body: 'warm up',
            replyTo: null,
            sentAt: new Date().toISOString(),
          },
        },
      ]),
    ),
  );
  await caughtUp();
  await new Promise((r) => setTimeout(r, 500));
  const { rows: dbRows } = await pool.query<{ oid: number }>(
    'SELECT oid FROM pg_database WHERE datname = current_database()',
  );
  const dbid = dbRows[0]!.oid;
  await pool.query('SELECT pg_stat_statements_reset(0, $1::oid, 0)', [dbid]);
  const threads0 = threadCpu();
  const [cpu0, batches0, events0] = [
    cpuMs(),
    await metric('notifier_batch_duration_seconds_count'),
    await metric('notifier_events_applied_total'),
  ];
  const started = performance.now();
  const total = RATE * SECONDS;
  let sent = 0;
  const inflight: Promise<unknown>[] = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * RATE));
    for (; sent < due; sent++) {
      const g = sent % GROUPS;
      const conversationId = groups[g]!;
      inflight.push(
        append(conversationId, [
          {
            type: 'MessageSent',
            data: {
              conversationId,
              messageId: randomUUID(),
              senderId: `g${g}u${(sent % (MEMBERS - 1)) + 1}`,
              body: `bench|${sent}|${Date.now()}| a message that addresses nobody in particular, as in B1`,
              replyTo: null,
              sentAt: new Date().toISOString(),
            },
          },
        ]),
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inflight);
  await caughtUp();
  const cpu = cpuMs() - cpu0;
  const threads = [...threadCpu()]
    .map(([name, t]) => {
      const t0 = threads0.get(name) ?? { user: 0, system: 0 };
      return { name, user: t.user - t0.user, system: t.system - t0.system };
    })
    .filter((t) => t.user + t.system > 0)
    .map((t) => `${t.name}: user ${t.user} ms, system ${t.system} ms`);
  const batches = (await metric('notifier_batch_duration_seconds_count')) - batches0;
  const events = (await metric('notifier_events_applied_total')) - events0;
  const records = Number(
    (await pool.query('SELECT count(*)::int AS n FROM notifier.notifications')).rows[0]?.n ?? 0,
  );
  const { rows: statements } = await pool.query<{ query: string; calls: string }>(
    `SELECT query, calls FROM pg_stat_statements WHERE dbid = $1 ORDER BY calls DESC`,
    [dbid],
  );
  const notifierStatements = statements.filter(
    (s) =>
      !/es\.append|INSERT INTO es\.|pg_stat_statements|user_data_keys \(|consumers\.checkpoints WHERE name = 'notifier'/.test(
        s.query,
      ) && !/^SELECT oid FROM pg_database/.test(s.query),
  );
  console.log(
    JSON.stringify(
      {
        messages: total,
        rate: RATE,
        seconds: SECONDS,
        records,
        events,
        batches,
        events_per_batch: Number((events / batches).toFixed(1)),
        notifier_cpu_ms: Math.round(cpu),
        notifier_cpu_us_per_message: Math.round((cpu * 1000) / total),
        notifier_threads: threads,
        notifier_cpu_us_per_delivery: Number(((cpu * 1000) / total / (MEMBERS - 1)).toFixed(2)),
        statements_per_batch: Number(
          (notifierStatements.reduce((n, s) => n + Number(s.calls), 0) / batches).toFixed(2),
        ),
        statements: notifierStatements.map(
          (s) => `${s.calls}\t${s.query.replace(/\s+/g, ' ').slice(0, 150)}`,
        ),
      },
      null,
      2,
    ),
  );
} finally {
  await notifier.stop();
  await store.close();
  await pool.end();
  await db.drop();
}
