import { randomUUID } from 'node:crypto';
import { getConversation, listConversations, READ_MODEL_SCHEMA, unreadSummary } from '@chat/db';
import { conversationStream } from '@chat/events';
import { delegatingStore } from '@chat/eventstore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjector, RebuildInterruptedError, rebuildReadModels } from '../src/index.js';
import {
  createHarness,
  dumpSchema,
  type Harness,
  readWholeLog,
  replayInto,
  silentLogger,
  untilVisible,
  waitForCheckpoint,
} from './harness.js';
import { ChatSimulator, simulate } from './simulator.js';

let h: Harness;
const stop = new AbortController();
let running: Promise<void>;

beforeAll(async () => {
  h = await createHarness('rebuild');
  running = createProjector({ store: h.store, pool: h.pool, logger: silentLogger, batchSize: 500 }).run(
    stop.signal,
  );
}, 60_000);
afterAll(async () => {
  stop.abort();
  await running;
  await h.close();
});

describe('online rebuild', () => {
  it('swaps in a replay while writes and queries continue; queries never fail and never go back; result equals a fresh replay', async () => {
    const sim = new ChatSimulator({ users: 30, seed: 7 });
    // Visible to readers first: other test files' transactions on the shared cluster can hold the log's
    // horizon back, and a replay that sees nothing yet has no 'replay' phase.
    await untilVisible(h.store, await simulate(h.store, sim, { conversations: 40, commands: 2000 }));
    // A probe conversation the test writes itself: its reader never reads, so what the queries answer
    // about it (last seq, unread count, unread total) can only grow — on any table, old or new.
    const probe = randomUUID();
    const [writerId, readerId] = ['probe-writer', 'probe-reader'];
    const probeEvent = (type: 'ConversationStarted' | 'MessageSent', data: Record<string, unknown>) => ({
      id: randomUUID(),
      type,
      data: { conversationId: probe, ...data },
      metadata: { userId: writerId, correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
    });
    let probeSeq = 0;
    const probeStarted = await h.store.append(
      conversationStream(probe),
      [
        probeEvent('ConversationStarted', {
          kind: 'group',
          title: 'probe',
          createdBy: writerId,
          members: [writerId, readerId],
        }),
      ],
      'no_stream',
    );
    const sendProbe = async () => {
      const r = await h.store.append(
        conversationStream(probe),
        [
          probeEvent('MessageSent', {
            messageId: randomUUID(),
            senderId: writerId,
            body: `probe ${probeSeq + 1}`,
            replyTo: null,
            sentAt: new Date().toISOString(),
          }),
        ],
        probeSeq,
      );
      probeSeq++;
      return r.position;
    };

    await waitForCheckpoint(h.db, probeStarted.position);

    // Writers and readers keep going for the whole rebuild.
    let writing = true;
    let lastWritten = '';
    const writer = (async () => {
      let batches = 0;
      while (writing) {
        const p = await simulate(h.store, sim, { conversations: 1, commands: 40, concurrency: 8 });
        const q = await sendProbe();
        for (const x of [p, q]) if (x > lastWritten) lastWritten = x;
        batches++;
      }
      return batches;
    })();
    type Answer = { startedAt: number; endedAt: number; lastSeq: number; unread: number; total: number };
    const answers: Answer[] = [];
    const failures: unknown[] = [];
    let otherQueries = 0;
    const reader = (async () => {
      while (writing) {
        const startedAt = performance.now();
        try {
          const conversation = await getConversation(h.db, readerId, probe);
          const summary = await unreadSummary(h.db, readerId);
          const list = await listConversations(h.db, sim.users[answers.length % 6]!, { limit: 20 });
          const first = list.items[0];
          if (first) await getConversation(h.db, sim.users[answers.length % 6]!, first.conversationId);
          otherQueries += 2;
          answers.push({
            startedAt,
            endedAt: performance.now(),
            lastSeq: conversation?.lastSeq ?? -1,
            unread: conversation?.unreadCount ?? -1,
            total: summary.total,
          });
        } catch (err) {
          failures.push(err);
        }
      }
    })();

    const phaseAt = new Map<string, number>();
    const result = await rebuildReadModels({
      store: h.store,
      pool: h.pool,
      logger: silentLogger,
      batchSize: 500,
      onProgress: (p) => {
        if (!phaseAt.has(p.phase)) phaseAt.set(p.phase, performance.now());
      },
    }).finally(async () => {
      // Keep writing a little after the swap: the live projector must apply into the new tables. (A
      // rebuild that fails stops the writer and reader too, so the test fails instead of running on.)
      await new Promise((r) => setTimeout(r, 500));
      writing = false;
    });
    const writes = await writer;
    await reader;

    expect([...phaseAt.keys()]).toEqual(['replay', 'swap', 'done']);
    // The replay wrote its tables unlogged; swapped in, they must be logged again, or a crash of
    // Postgres would empty the read models.
    const { rows: unlogged } = await h.pool.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'i', 'S') AND c.relpersistence <> 'p'`,
      [READ_MODEL_SCHEMA],
    );
    expect(unlogged).toEqual([]);
    expect(result.events).toBeGreaterThan(1000);
    expect(writes).toBeGreaterThan(0);
    expect(failures).toEqual([]);
    // Queries ran before, across and after the swap (the swap transaction through its commit)...
    const swapFrom = phaseAt.get('swap')!;
    const swapTo = phaseAt.get('done')!;
    const across = answers.filter((a) => a.startedAt <= swapTo && a.endedAt >= swapFrom).length;
    const before = answers.filter((a) => a.endedAt < swapFrom).length;
    const after = answers.filter((a) => a.startedAt > swapTo).length;
    console.info(
      `rebuild: ${before} probe queries before the swap, ${across} across it, ${after} after; ${otherQueries} others`,
    );
    expect(before).toBeGreaterThan(0);
    expect(across).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(0);
    // ...and every answer was right: the probe exists for its member, and the read model never went
    // back in time, neither while the old tables served nor when the new ones took over.
    for (const [i, a] of answers.entries()) {
      expect(a.lastSeq, `answer ${i}`).toBeGreaterThanOrEqual(0);
      expect(a.unread, `answer ${i}`).toBe(a.lastSeq);
      const previous = answers[i - 1];
      if (!previous) continue;
      expect(a.lastSeq, `answer ${i} after ${previous.lastSeq}`).toBeGreaterThanOrEqual(previous.lastSeq);
      expect(a.total, `answer ${i}`).toBeGreaterThanOrEqual(previous.total);
    }
    expect(answers.at(-1)!.lastSeq).toBeGreaterThan(answers[0]!.lastSeq);

    const log = await readWholeLog(h.store, lastWritten);
    const last = log.at(-1)?.position ?? '';
    await waitForCheckpoint(h.db, last);
    await replayInto(h.pool, h.store, 'expected');
    const live = await dumpSchema(h.pool, READ_MODEL_SCHEMA);
    const fresh = await dumpSchema(h.pool, 'expected');
    expect(live).toEqual(fresh);
    // The comparison covers what v1.1 added: levels members set, reactions.
    expect(live.message_reactions.length).toBeGreaterThan(50);
    expect(new Set(live.members.map((m) => m.notification_level))).toEqual(
      new Set([null, 'all', 'mentions', 'none']),
    );
    // ...and what moderation added (issue 16): roles, bans, reports open and resolved, blocks.
    expect(new Set(live.members.map((m) => m.role))).toEqual(new Set([null, 'admin']));
    expect(live.conversation_bans.length).toBeGreaterThan(3);
    expect(new Set(live.reports.map((r) => r.status))).toEqual(new Set(['open', 'resolved']));
    expect(live.user_blocks.length).toBeGreaterThan(3);
    expect(live.messages.some((m) => m.deleted && m.deleted_by !== m.sender_id)).toBe(true);
    const schemas = await h.pool.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'read_models%' ORDER BY nspname`,
    );
    expect(schemas.rows.map((r) => r.nspname)).toEqual(['read_models']);
    // ... and threads; the swapped-in tables have every index and constraint the migrations create —
    // the replay drops the messages' ones and creates them again from the catalog (the btree ones at its
    // first message lookup, the search GIN at its end) — as a freshly migrated schema has them.
    expect(live.messages.filter((m) => Number(m.reply_count) > 0).length).toBeGreaterThan(20);
    const definitions = async (schema: string) => {
      const indexes = await h.pool.query<{ tablename: string; indexname: string; indexdef: string }>(
        `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY 1, 2`,
        [schema],
      );
      const constraints = await h.pool.query<{ relname: string; conname: string; def: string }>(
        `SELECT c.relname, con.conname, pg_get_constraintdef(con.oid) AS def
           FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
          WHERE con.connamespace = $1::regnamespace ORDER BY 1, 2`,
        [schema],
      );
      return {
        indexes: indexes.rows.map((r) => ({
          ...r,
          indexdef: r.indexdef.replace(` ${schema}.`, ' <schema>.'),
        })),
        constraints: constraints.rows,
      };
    };
    const liveDefinitions = await definitions(READ_MODEL_SCHEMA);
    expect(liveDefinitions).toEqual(await definitions('expected'));
    expect(liveDefinitions.indexes.map((r) => r.indexname)).toEqual(
      expect.arrayContaining([
        'messages_pkey',
        'messages_conversation_id_message_id_key',
        'messages_search_idx',
      ]),
    );
  });

  it('swaps nothing in when its lock session ended during the replay (a Postgres restart empties the unlogged shadow)', async () => {
    const sim = new ChatSimulator({ users: 10, seed: 11 });
    await untilVisible(h.store, await simulate(h.store, sim, { conversations: 5, commands: 300 }));
    const liveSchema = async () =>
      (
        await h.pool.query<{ oid: string }>('SELECT oid FROM pg_namespace WHERE nspname = $1', [
          READ_MODEL_SCHEMA,
        ])
      ).rows[0]?.oid;
    const before = await liveSchema();
    // The second page read waits until the rebuild's lock session is gone, as every session is after
    // a crash and recovery; the pool's other connections are new ones, as they would be after it.
    let reads = 0;
    const store = delegatingStore(h.store, {
      readAll: async (options: Parameters<typeof h.store.readAll>[0]) => {
        if (++reads === 2) {
          // The session holding the rebuild's advisory lock (a bigint key: classid high, objid low bits).
          const { rows } = await h.pool.query<{ ended: boolean }>(
            `SELECT pg_terminate_backend(l.pid, 5000) AS ended
               FROM pg_locks l, hashtextextended('read_models:rebuild', 0) k
              WHERE l.locktype = 'advisory' AND l.granted
                AND l.classid::text::bigint = (k >> 32) & 4294967295 AND l.objid::text::bigint = k & 4294967295`,
          );
          expect(rows).toEqual([{ ended: true }]);
        }
        return h.store.readAll(options);
      },
    });
    await expect(
      rebuildReadModels({ store, pool: h.pool, logger: silentLogger, batchSize: 100 }),
    ).rejects.toThrow(RebuildInterruptedError);
    expect(reads).toBeGreaterThan(2);
    expect(await liveSchema()).toBe(before);
    // The next rebuild clears the shadow left behind and swaps in.
    const result = await rebuildReadModels({
      store: h.store,
      pool: h.pool,
      logger: silentLogger,
      batchSize: 100,
    });
    expect(result.events).toBeGreaterThan(300);
  });
});
