import { join } from 'node:path';
import {
  cpuBetween,
  currentLogDir,
  HOST,
  postgresPids,
  processTree,
  spawnTs,
  watchCpu,
} from '@chat/processes';
import pg from 'pg';
import type { Scenario } from '../context.js';
import type { RebuildMessage } from '../load/rebuild-runner.js';
import { round } from '../report.js';
import { storeReadAllPerSecond } from '../store-reference.js';
import { createDatabase, migrate } from '../system.js';

// B5: events/s of the projector's online rebuild (replay from 0 into a shadow schema, then swap) over a
// log of `--events` events (default 1,000,000), written straight into the event store's table in big
// INSERT … SELECT batches: 1,000 group conversations of 50 members, each a ConversationStarted followed
// by MessageSent events, interleaved across conversations as live traffic would be. The budget
// (DESIGN.md) is a ratio: at least 60 % of the store's own `readAll` over the same log in the same run.

const CONVERSATIONS = 1000;
/**
 * 5,000 events per INSERT: each statement is a transaction holding the log's append lock to its commit
 * (packages/eventstore schema), so they stay short (well under a second) instead of one long bulk load.
 */
const REVISIONS_PER_INSERT = 5;
/** Both phases are bounded so the whole `pnpm bench` stays within its 15 minutes on a busy host. */
const APPEND_BUDGET_MS = 100_000;
const REBUILD_TIMEOUT_MS = 150_000;
/** The store's readAll over the log is read for at most this long (a million events take ~15 s here). */
const READ_ALL_MAX_MS = 40_000;
const BUDGET_SHARE_OF_READ_ALL = 0.6;

export const insertChunk = (client: pg.Client, fromRev: number, toRev: number) =>
  client.query(
    `INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
     SELECT 'conversation-' || x.cid, r, gen_random_uuid(),
            CASE WHEN r = 0 THEN 'ConversationStarted' ELSE 'MessageSent' END,
            CASE WHEN r = 0 THEN jsonb_build_object(
                   'conversationId', x.cid, 'kind', 'group', 'title', 'rebuild ' || x.c,
                   'createdBy', 'rb' || x.c || '-0',
                   'members', (SELECT jsonb_agg('rb' || x.c || '-' || m) FROM generate_series(0, 49) m))
                 ELSE jsonb_build_object(
                   'conversationId', x.cid, 'messageId', gen_random_uuid(), 'senderId', 'rb' || x.c || '-' || (r % 50),
                   'body', 'message ' || r || ' of a rebuild benchmark conversation', 'replyTo', null,
                   'sentAt', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
            END,
            jsonb_build_object('userId', 'rb' || x.c || '-' || (r % 50), 'correlationId', gen_random_uuid(),
                               'causationId', null, 'schemaVersion', 1)
       FROM generate_series($1::int, $2::int) r,
            LATERAL (SELECT c, md5('bench-rebuild-' || c)::uuid::text AS cid
                       FROM generate_series(0, $3::int - 1) c) x
      ORDER BY r, x.c`,
    [fromRev, toRev, CONVERSATIONS],
  );

export const b5Rebuild: Scenario = {
  name: 'b5-rebuild',
  title: 'B5 rebuild of the read models',
  run: async (ctx) => {
    const perConversation = Math.max(2, Math.ceil(ctx.options.rebuildEvents / CONVERSATIONS));
    const total = perConversation * CONVERSATIONS;
    const db = await createDatabase('rebuild');
    try {
      await migrate(db.url);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const loadStarted = performance.now();
      const left = ctx.remainingMs() - 30_000;
      const appendBudgetMs = Math.max(10_000, Math.min(APPEND_BUDGET_MS, left * 0.4));
      const rebuildTimeoutMs = Math.max(20_000, Math.min(REBUILD_TIMEOUT_MS, left * 0.55));
      let revisions = 0;
      try {
        // A bulk load, not the append path; the log keeps exactly the indexes of the store's schema.
        await client.query('SET synchronous_commit = off');
        while (revisions < perConversation && performance.now() - loadStarted < appendBudgetMs) {
          const to = Math.min(perConversation, revisions + REVISIONS_PER_INSERT);
          await insertChunk(client, revisions, to - 1);
          revisions = to;
        }
        await client.query(
          `INSERT INTO es.streams (stream_id, revision)
           SELECT 'conversation-' || md5('bench-rebuild-' || c)::uuid::text, $1::bigint
             FROM generate_series(0, $2::int - 1) c`,
          [revisions - 1, CONVERSATIONS],
        );
        await client.query('ANALYZE es.events');
      } finally {
        await client.end();
      }
      const appended = revisions * CONVERSATIONS;
      const loadS = (performance.now() - loadStarted) / 1000;
      ctx.log(
        `b5: ${appended} events appended in ${round(loadS)} s (${Math.round(appended / loadS)}/s); reading them with readAll`,
      );
      const readAll = await storeReadAllPerSecond(db.url, READ_ALL_MAX_MS);
      ctx.log(
        `b5: the store's readAll: ${Math.round(readAll.perSecond)} events/s (${readAll.events} events); rebuilding`,
      );

      const runner = spawnTs('b5-rebuild', 'bench/src/load/rebuild-runner.ts', {
        env: { DATABASE_URL: db.url },
        ipc: true,
        ...(ctx.options.cpuProf
          ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${join(currentLogDir(), 'profiles', 'rebuild')}`] }
          : {}),
      });
      const groups = [
        { name: 'rebuild', pids: () => processTree(runner.pid) },
        { name: 'postgres', pids: () => postgresPids(db.name) },
      ];
      // Watched, not just sampled at both ends: the runner's Postgres backends end with its pool.
      const watch = watchCpu(groups);
      const before = watch.first;
      let progress = { events: 0, at: before.at };
      const outcome = await new Promise<RebuildMessage | { type: 'timeout' }>((resolve) => {
        const timer = setTimeout(() => resolve({ type: 'timeout' }), rebuildTimeoutMs);
        runner.process.on('message', (m: RebuildMessage) => {
          // The orchestrator's clock: the runner's performance.now() has another origin.
          if (m.type === 'progress') progress = { events: m.events, at: performance.now() };
          else {
            clearTimeout(timer);
            resolve(m);
          }
        });
        void runner.exited.then(() => {
          clearTimeout(timer);
          resolve({ type: 'error', message: `rebuild runner exited:\n${runner.tail()}` });
        });
      });
      const after = watch.stop();
      await runner.stop();
      if (outcome.type === 'error') throw new Error(outcome.message);
      const cpu = cpuBetween(before, after);
      const events = outcome.type === 'done' ? outcome.events : progress.events;
      const seconds = outcome.type === 'done' ? outcome.ms / 1000 : (progress.at - before.at) / 1000;
      const perSecond = seconds > 0 ? events / seconds : 0;
      const cpuSeconds = (cpu.get('rebuild')?.cpuSeconds ?? 0) + (cpu.get('postgres')?.cpuSeconds ?? 0);
      const check = new pg.Client({ connectionString: db.url });
      await check.connect();
      const messages = await check
        .query<{ n: string }>('SELECT count(*) AS n FROM read_models.messages')
        .then(
          (r) => Number(r.rows[0]?.n),
          () => null,
        )
        .finally(() => check.end());
      ctx.log(`b5: ${events} events in ${round(seconds)} s → ${Math.round(perSecond)}/s (${outcome.type})`);
      ctx.rows.push({
        scenario: 'B5 rebuild',
        case: `${appended.toLocaleString('en')} events, ${CONVERSATIONS} conversations × 50 members`,
        metrics: {
          'events/s': Math.round(perSecond),
          events,
          seconds: round(seconds, 1),
          outcome:
            outcome.type === 'done'
              ? 'swapped in'
              : `stopped after ${Math.round(rebuildTimeoutMs / 1000)} s (time budget)`,
          'messages in read model': messages,
          'rebuild cpu %': round((cpu.get('rebuild')?.cores ?? 0) * 100, 0),
          'postgres cpu %': round((cpu.get('postgres')?.cores ?? 0) * 100, 0),
          'events per cpu-second (rebuild + pg)': cpuSeconds > 0 ? Math.round(events / cpuSeconds) : null,
          'host busy %': round((cpu.get(HOST)?.cores ?? 0) * 100, 0),
          "store's readAll events/s": Math.round(readAll.perSecond),
          'share of readAll %':
            readAll.perSecond > 0 ? round((perSecond / readAll.perSecond) * 100, 0) : null,
          'bulk append events/s': Math.round(appended / loadS),
          ...(appended < total
            ? { 'append budget': `${total} asked, ${appended} within ${Math.round(appendBudgetMs / 1000)} s` }
            : {}),
        },
        budgets: [
          {
            name: `≥ 60 % of the store's readAll (${Math.round(readAll.perSecond)} events/s) in this run`,
            actual: Math.round(perSecond),
            limit: Math.round(readAll.perSecond * BUDGET_SHARE_OF_READ_ALL),
            kind: 'min',
          },
        ],
        generatorCores: null,
        generatorBottleneck: false,
      });
    } finally {
      await db.drop();
    }
  },
};
