/**
 * CPU per SendMessage of the command path at a fixed offered rate (open loop): the command-api process
 * and the Postgres backends of its database (utime+stime from /proc), plus the database's commits and
 * its statements (pg_stat_statements of this database only, when the extension is loaded). A fixed rate
 * makes runs comparable on a busy host: CPU per message depends on the rate, not on how fast the host is.
 *
 *   npx tsx services/command-api/bench/cost-per-message.ts [--rate 200] [--duration 10]
 *     [--conversations 100] [--members 20] [--repeat-writers]
 *
 * Each message comes from the next member of the next conversation, so with conversations × members ≥
 * rate × duration every message is its writer's first (the first-key path); `--repeat-writers` sends all
 * from one member per conversation (their keys cached after the first).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLK_TCK, cpuTicks } from '@chat/processes';
import { createTestDatabase, freePort, signToken } from '@chat/testkit';
import pg from 'pg';
import { startBenchCommandApi } from './service.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    duration: { type: 'string', default: '10' },
    conversations: { type: 'string', default: '100' },
    members: { type: 'string', default: '20' },
    'repeat-writers': { type: 'boolean', default: false },
  },
});
const rate = Number(values.rate);
const durationS = Number(values.duration);
const conversationCount = Number(values.conversations);
const memberCount = Number(values.members);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** utime + stime of a process in seconds, or 0 when it has gone. */
const cpuOf = (pid: number): number => (cpuTicks(pid) ?? 0) / CLK_TCK;

const db = await createTestDatabase('costmsg');
execFileSync(process.execPath, ['--import', 'tsx', resolve(repoRoot, 'infra/migrate.ts')], {
  env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
  stdio: 'inherit',
});
const admin = new pg.Pool({ connectionString: db.url, max: 1 });
// The view of pg_stat_statements exists only where the extension was created (it must be preloaded).
await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements').catch(() => undefined);
const port = await freePort();
const service = await (async () => {
  try {
    return await startBenchCommandApi(db.url, port);
  } catch (err) {
    // Not started: nothing to measure, but the database is this script's to drop.
    await admin.end();
    await db.drop();
    throw err;
  }
})();

try {
  const base = `http://127.0.0.1:${port}`;
  const conversations: { id: string; members: string[] }[] = [];
  for (let c = 0; c < conversationCount; c++) {
    const members = Array.from({ length: memberCount }, (_, m) => `cost-${c}-${m}`);
    const res = await fetch(`${base}/v1/conversations`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await signToken(members[0]!)}`,
        'content-type': 'application/json',
      },
      // No title: the set-up writes no personal text, so no writer has a key before the run.
      body: JSON.stringify({ kind: 'group', members }),
    });
    if (res.status !== 201) throw new Error(`create conversation: ${res.status} ${await res.text()}`);
    conversations.push({ id: ((await res.json()) as { conversationId: string }).conversationId, members });
  }
  const tokens = new Map<string, string>();
  for (const { members } of conversations)
    for (const m of values['repeat-writers'] ? members.slice(0, 1) : members)
      tokens.set(m, `Bearer ${await signToken(m)}`);

  const backends = async () =>
    (
      await admin.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      )
    ).rows.map((r) => r.pid);
  const commits = async () =>
    Number(
      (
        await admin.query<{ n: string }>(
          'SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()',
        )
      ).rows[0]?.n,
    );
  const statements = async () => {
    try {
      const { rows } = await admin.query<{ q: string; calls: string; ms: number }>(
        `SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS q, calls, total_exec_time AS ms
           FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      );
      return new Map(rows.map((r) => [r.q, { calls: Number(r.calls), ms: r.ms }]));
    } catch {
      return new Map<string, { calls: number; ms: number }>();
    }
  };

  // Warm-up: every pool connection and code path once, outside the window.
  await Promise.all(
    conversations.slice(0, 10).map(async ({ id, members }) => {
      const res = await fetch(`${base}/v1/conversations/${id}/messages`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${await signToken(`${members[0]}-warm`)}`,
          'content-type': 'application/json',
        },
        body: JSON.stringify({ messageId: randomUUID(), body: 'warm-up' }),
      });
      await res.arrayBuffer();
    }),
  );
  await new Promise((r) => setTimeout(r, 1000));

  // Backends come and go (pools close idle connections): each is sampled while it lives, and one born
  // during the window counts from zero.
  const cpuAtStart = new Map((await backends()).map((pid) => [pid, cpuOf(pid)]));
  const cpuLast = new Map(cpuAtStart);
  const sampleBackends = async () => {
    for (const pid of await backends()) {
      const cpu = cpuOf(pid);
      if (cpu > 0) cpuLast.set(pid, cpu);
    }
  };
  const sampler = setInterval(() => void sampleBackends().catch(() => undefined), 100);
  const cpuApi0 = cpuOf(service.pid);
  const commits0 = await commits();
  const statements0 = await statements();
  const total = Math.round(rate * durationS);
  const codes = new Map<number, number>();
  const inFlight: Promise<void>[] = [];
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const conversation = conversations[i % conversations.length]!;
    const round = Math.floor(i / conversations.length);
    const sender = values['repeat-writers']
      ? conversation.members[0]!
      : conversation.members[round % conversation.members.length]!;
    inFlight.push(
      fetch(`${base}/v1/conversations/${conversation.id}/messages`, {
        method: 'POST',
        headers: { authorization: tokens.get(sender)!, 'content-type': 'application/json' },
        body: JSON.stringify({ messageId: randomUUID(), body: `cost message ${i} from ${sender}` }),
      }).then(
        async (res) => {
          await res.arrayBuffer();
          codes.set(res.status, (codes.get(res.status) ?? 0) + 1);
        },
        () => {
          codes.set(0, (codes.get(0) ?? 0) + 1);
        },
      ),
    );
  }
  await Promise.all(inFlight);
  const elapsedS = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 500));
  const cpuApi = cpuOf(service.pid) - cpuApi0;
  clearInterval(sampler);
  await sampleBackends();
  const cpuPg = [...cpuLast].reduce((s, [pid, cpu]) => s + cpu - (cpuAtStart.get(pid) ?? 0), 0);
  const commitsUsed = (await commits()) - commits0;
  const statements1 = await statements();
  const perMessage = (x: number) => Math.round((x / total) * 1e6);
  const byStatement = [...statements1]
    .map(([q, v]) => {
      const before = statements0.get(q) ?? { calls: 0, ms: 0 };
      return { q, calls: v.calls - before.calls, ms: Math.round(v.ms - before.ms) };
    })
    .filter((s) => s.calls > 0 && !s.q.includes('regexp_replace(query'))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 8);
  console.log(
    JSON.stringify(
      {
        rate,
        durationS,
        messages: total,
        elapsedS: Math.round(elapsedS * 10) / 10,
        achievedRate: Math.round(total / elapsedS),
        writers: values['repeat-writers'] ? 'one per conversation (keys cached)' : 'a new writer per message',
        codes: Object.fromEntries(codes),
        commandApiCpuMicrosPerMessage: perMessage(cpuApi),
        postgresBackendsCpuMicrosPerMessage: perMessage(cpuPg),
        commitsPerMessage: Math.round((commitsUsed / total) * 100) / 100,
        statements: byStatement,
      },
      null,
      2,
    ),
  );
} finally {
  await admin.end();
  await service.stop();
  await db.drop();
}
