import { getConversation, listConversations, READ_MODEL_SCHEMA, unreadSummary } from '@chat/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjector, rebuildReadModels } from '../src/index.js';
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
  it('swaps in a replay while writes and queries continue; queries never fail; result equals a fresh replay', async () => {
    const sim = new ChatSimulator({ users: 30, seed: 7 });
    // Visible to readers first: other test files' transactions on the shared cluster can hold the log's
    // horizon back, and a replay that sees nothing yet has no 'replay' phase.
    await untilVisible(h.store, await simulate(h.store, sim, { conversations: 40, commands: 2000 }));

    // Writers and readers keep going for the whole rebuild.
    let writing = true;
    let lastWritten = '';
    const writer = (async () => {
      let batches = 0;
      while (writing) {
        const p = await simulate(h.store, sim, { conversations: 1, commands: 40, concurrency: 8 });
        if (p > lastWritten) lastWritten = p;
        batches++;
      }
      return batches;
    })();
    let queries = 0;
    const failures: unknown[] = [];
    const reader = (async () => {
      while (writing) {
        for (const userId of sim.users.slice(0, 6)) {
          try {
            const list = await listConversations(h.db, userId, { limit: 20 });
            const first = list.items[0];
            if (first) await getConversation(h.db, userId, first.conversationId);
            await unreadSummary(h.db, userId);
            queries += 3;
          } catch (err) {
            failures.push(err);
          }
        }
      }
    })();

    let phases: string[] = [];
    const result = await rebuildReadModels({
      store: h.store,
      pool: h.pool,
      logger: silentLogger,
      batchSize: 500,
      onProgress: (p) => {
        if (phases.at(-1) !== p.phase) phases = [...phases, p.phase];
      },
    });
    // Keep writing a little after the swap: the live projector must apply into the new tables.
    await new Promise((r) => setTimeout(r, 500));
    writing = false;
    const writes = await writer;
    await reader;

    expect(phases).toEqual(['replay', 'swap', 'done']);
    expect(result.events).toBeGreaterThan(1000);
    expect(writes).toBeGreaterThan(0);
    expect(queries).toBeGreaterThan(0);
    expect(failures).toEqual([]);

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
    const schemas = await h.pool.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'read_models%' ORDER BY nspname`,
    );
    expect(schemas.rows.map((r) => r.nspname)).toEqual(['read_models']);
  });
});
