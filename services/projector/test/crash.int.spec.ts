import { READ_MODEL_SCHEMA, readCheckpoint } from '@chat/db';
import {
  appendBulkHistory,
  createHarness,
  dumpSchema,
  type Harness,
  readWholeLog,
  replayInto,
  waitForCheckpoint,
} from '@chat/projection/testing';
import { freePort, startService, testSubjectPrefix, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let h: Harness;
beforeAll(async () => {
  h = await createHarness('crash');
}, 60_000);
afterAll(async () => {
  await h.close();
});

const startProjector = async (port: number) =>
  startService({
    name: 'projector',
    entry: 'services/projector',
    env: {
      DATABASE_URL: h.database.url,
      NATS_SUBJECT_PREFIX: testSubjectPrefix(),
      PORT: String(port),
      RELAY_ENABLED: 'false',
      PROJECTOR_BATCH_SIZE: '1000',
      LOG_LEVEL: 'warn',
    },
    ready: { url: `http://127.0.0.1:${port}/healthz` },
  });

describe('projector crash', () => {
  it('SIGKILLed mid catch-up of 50,000 events, restarted: read models equal a fresh replay', {
    timeout: 240_000,
  }, async () => {
    const last = await appendBulkHistory(h.store, { conversations: 50, eventsPerConversation: 1000 });
    const log = await readWholeLog(h.store, last);
    expect(log.length).toBeGreaterThanOrEqual(50_000);

    const port = await freePort();
    const first = await startProjector(port);
    // Killed as soon as its first effects are visible (not when its checkpoint moves): a projector whose
    // checkpoint landed apart from its effects would be caught in between, and apply that batch again.
    await waitFor(
      async () => (await h.pool.query(`SELECT 1 FROM ${READ_MODEL_SCHEMA}.messages LIMIT 1`)).rows.length > 0,
      { intervalMs: 5, what: 'the projector to start applying' },
    );
    await first.kill();
    const atKill = await readCheckpoint(h.db);
    expect(atKill < last, 'killed before it caught up').toBe(true);

    const second = await startProjector(port);
    await waitForCheckpoint(h.db, last, 180_000).catch((err: unknown) => {
      throw new Error(`restarted projector did not catch up:\n${second.output()}`, { cause: err });
    });
    await second.stop();

    await replayInto(h.pool, h.store, 'expected');
    const live = await dumpSchema(h.pool, READ_MODEL_SCHEMA);
    const fresh = await dumpSchema(h.pool, 'expected');
    expect(live.messages.length).toBe(log.filter((e) => e.type === 'MessageSent').length);
    expect(live.conversations).toEqual(fresh.conversations);
    expect(live.members).toEqual(fresh.members);
    expect(live.messages).toEqual(fresh.messages);
  });
});
