/**
 * Notifier throughput: `npx tsx services/notifier/bench/throughput.ts` (bounded: ~1 min).
 * Runs the real notifier process against a scratch database and drives the log through the event
 * store at a fixed offered rate, then reports records/s, how far the notifier trails the log, and the
 * notifier's CPU time. Scenarios: a 1,000-member group at 50 msg/s (default level: mentions only) and
 * 20 groups of 50 members who all chose level `all` at 500 msg/s (49 records per message), plus a
 * backlog drain (maximum rate).
 */
import { randomUUID } from 'node:crypto';
import { type ChatEvent, conversationStream, userStream } from '@chat/events';
import { createPostgresEventStore, type EventStore, migrateEventStore } from '@chat/eventstore';
import { migrateNotifier } from '@chat/notifications';
import {
  createTestDatabase,
  freePort,
  messageSentData,
  natsUrl,
  startService,
  testSubjectPrefix,
} from '@chat/testkit';
import pg from 'pg';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

const db = await createTestDatabase('notifbench');
const pool = new pg.Pool({ connectionString: db.url, max: 8 });
await migrateEventStore(pool);
await migrateNotifier(pool);
const store: EventStore = createPostgresEventStore({ connectionString: db.url, maxConnections: 16 });
const port = await freePort();
const notifier = await startService({
  name: 'notifier',
  entry: 'services/notifier',
  env: {
    DATABASE_URL: db.url,
    NATS_URL: natsUrl(),
    NATS_SUBJECT_PREFIX: testSubjectPrefix(),
    PORT: String(port),
    LOG_LEVEL: 'warn',
  },
  ready: { url: `http://127.0.0.1:${port}/readyz` },
});

const meta = { userId: 'bench', correlationId: randomUUID(), causationId: null, schemaVersion: 1 };
const append = (conversationId: string, events: ChatEvent[]) =>
  store.append(
    conversationStream(conversationId),
    events.map((e) => ({ id: randomUUID(), type: e.type, data: e.data, metadata: meta })),
    'any',
  );
const message = (conversationId: string, senderId: string, body: string): ChatEvent => ({
  type: 'MessageSent',
  data: messageSentData(conversationId, body, senderId),
});

const scalar = async (sql: string) => Number((await pool.query(sql)).rows[0]?.v ?? 0);
const recordCount = () => scalar('SELECT count(*)::bigint AS v FROM notifier.notifications');
const checkpoint = async () =>
  (
    await pool.query<{ position: string }>(
      `SELECT position FROM consumers.checkpoints WHERE name = 'notifier'`,
    )
  ).rows[0]?.position ?? '';
const metric = async (name: string) => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
};
const cpuSeconds = () => metric('process_cpu_seconds_total');
/** Time the notifier spent inside batch transactions (the rest is waiting for the log). */
const batchSeconds = () => metric('notifier_batch_duration_seconds_sum');
/** Waits for an exact record count: robust even while other databases' transactions hold back the log's visible head. */
const recordsReach = async (n: number) => {
  while ((await recordCount()) < n) await new Promise((r) => setTimeout(r, 10));
};
const caughtUp = async () => {
  const head = await store.headPosition();
  while ((await checkpoint()) < head) await new Promise((r) => setTimeout(r, 10));
};

/** Groups of `members`; with `everyMessage`, every member sets level `all` (groups notify mentions by default). */
const startGroups = async (groups: number, members: number, everyMessage = false) => {
  const ids: string[] = [];
  for (let g = 0; g < groups; g++) {
    const conversationId = randomUUID();
    const list = Array.from({ length: members }, (_, i) => `g${g}u${i}`);
    await append(conversationId, [
      {
        type: 'ConversationStarted',
        data: { conversationId, kind: 'group', title: null, createdBy: list[0]!, members: list },
      },
    ]);
    if (everyMessage) {
      await Promise.all(
        list.map((userId) =>
          store.append(
            userStream(userId),
            [
              {
                id: randomUUID(),
                type: 'NotificationLevelSet',
                data: { conversationId, userId, level: 'all' },
                metadata: meta,
              },
            ],
            'any',
          ),
        ),
      );
    }
    ids.push(conversationId);
  }
  await caughtUp();
  return ids;
};

type Result = Record<string, string | number>;

/** Offers `rate` messages/s for SECONDS, one append per message, then waits for the notifier. */
const paced = async (
  name: string,
  groups: string[],
  rate: number,
  recordsPerMessage: number,
  body: (i: number, g: number) => string,
) => {
  const [records0, cpu0, batch0] = [await recordCount(), await cpuSeconds(), await batchSeconds()];
  const started = performance.now();
  const total = rate * SECONDS;
  const trailing: number[] = [];
  // One sampler for how long the notifier trails the log: append acknowledged → checkpoint past it.
  const samples: { position: string; t0: number }[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling || samples.length > 0) {
      const at = await checkpoint();
      const now = performance.now();
      for (let i = samples.length - 1; i >= 0; i--) {
        if (samples[i]!.position <= at) trailing.push(now - samples.splice(i, 1)[0]!.t0);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const every = Math.max(1, Math.floor(rate / 20));
  let sent = 0;
  const inflight: Promise<unknown>[] = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) {
      const g = sent % groups.length;
      const conv = groups[g]!;
      const sample = sent % every === 0;
      const t0 = performance.now();
      inflight.push(
        append(conv, [message(conv, `g${g}u0`, body(sent, g))]).then(({ position }) => {
          if (sample) samples.push({ position, t0 });
        }),
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inflight);
  const sendSeconds = (performance.now() - started) / 1000;
  await recordsReach(records0 + total * recordsPerMessage);
  const elapsed = (performance.now() - started) / 1000;
  sampling = false;
  await sampler;
  const records = (await recordCount()) - records0;
  const cpu = (await cpuSeconds()) - cpu0;
  const inBatches = (await batchSeconds()) - batch0;
  trailing.sort((a, b) => a - b);
  const pct = (p: number) => trailing[Math.min(trailing.length - 1, Math.floor(trailing.length * p))] ?? 0;
  return {
    scenario: name,
    messages: total,
    offered_msg_per_s: rate,
    achieved_msg_per_s: Math.round(total / sendSeconds),
    records,
    records_per_s: Math.round(records / elapsed),
    drain_after_last_send_ms: Math.round((elapsed - sendSeconds) * 1000),
    trail_p50_ms: Math.round(pct(0.5)),
    trail_p99_ms: Math.round(pct(0.99)),
    notifier_cpu_s: Number(cpu.toFixed(2)),
    in_batch_transactions_s: Number(inBatches.toFixed(2)),
    notifier_cpu_us_per_record: records > 0 ? Math.round((cpu / records) * 1e6) : 0,
  } satisfies Result;
};

/** Appends a backlog as fast as possible (50 messages per append), then times the notifier draining it. */
const backlog = async (name: string, groups: string[], messages: number) => {
  const [records0, cpu0, batch0] = [await recordCount(), await cpuSeconds(), await batchSeconds()];
  const started = performance.now();
  const per = 50;
  const jobs: Promise<unknown>[] = [];
  for (let i = 0; i < messages / per; i++) {
    const g = i % groups.length;
    const conv = groups[g]!;
    jobs.push(
      append(
        conv,
        Array.from({ length: per }, (_, k) => message(conv, `g${g}u0`, `backlog ${i}.${k}`)),
      ),
    );
  }
  await Promise.all(jobs);
  await recordsReach(records0 + messages * 49);
  const elapsed = (performance.now() - started) / 1000;
  const records = (await recordCount()) - records0;
  const cpu = (await cpuSeconds()) - cpu0;
  const inBatches = (await batchSeconds()) - batch0;
  return {
    scenario: name,
    messages,
    records,
    records_per_s: Math.round(records / elapsed),
    seconds: Number(elapsed.toFixed(2)),
    notifier_cpu_s: Number(cpu.toFixed(2)),
    in_batch_transactions_s: Number(inBatches.toFixed(2)),
    notifier_cpu_us_per_record: Math.round((cpu / records) * 1e6),
  } satisfies Result;
};

const results: Result[] = [];
try {
  const big = await startGroups(1, 1000);
  // Every message mentions three members (the group default notifies mentions only): 3 records each.
  results.push(
    await paced('1 group x 1000 members, 50 msg/s, mentions only', big, 50, 3, (i) => {
      const a = (i * 7) % 999;
      return `hey @g0u${a + 1} @g0u${((a + 100) % 999) + 1} and @g0u${((a + 500) % 999) + 1}, see this`;
    }),
  );
  const fifty = await startGroups(20, 50, true);
  results.push(
    await paced('20 groups x 50 members, 500 msg/s', fifty, 500, 49, (i) => `message ${i} for everyone`),
  );
  results.push(await backlog('backlog drain, 50-member groups', fifty, 5000));
  console.log(JSON.stringify(results, null, 2));
} finally {
  await notifier.stop();
  await store.close();
  await pool.end();
  await db.drop();
}
