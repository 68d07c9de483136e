import { createTestDatabase, type TestDatabase } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPostgresEventStore,
  migrateEventStore,
  type NewEvent,
  type PostgresEventStore,
  type RecordedEvent,
  START_POSITION,
} from '../src/index.js';
import { collect, newEvents, sleep } from './helpers.js';

const APPENDERS = 8;
const EVENTS_PER_APPENDER = 2_000;
const GROUP_COMMIT_EVENTS = 2_000;
const SHARED_STREAMS = 16;
const HELD_OPEN_MS = 3_000;

const random = (max: number) => Math.floor(Math.random() * max);

let database: TestDatabase;
let pool: pg.Pool;
let store: PostgresEventStore;

beforeAll(async () => {
  database = await createTestDatabase('esconcurrency');
  pool = new pg.Pool({ connectionString: database.url, max: APPENDERS + 4 });
  await migrateEventStore(pool);
  store = createPostgresEventStore({ connectionString: database.url, pollIntervalMs: 250 });
});

afterAll(async () => {
  await store?.close();
  await pool?.end();
  await database?.drop();
});

/**
 * One raw transaction through the adapter's own SQL path (`es.append_batch`), with random pauses before
 * and after the insert while the transaction stays open, so commits land out of global-position order.
 */
const appendInTransaction = async (
  appends: { stream: string; events: NewEvent[] }[],
  holdMs: number,
): Promise<void> => {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await sleep(random(4));
    const sorted = [...appends].sort((a, b) => (a.stream < b.stream ? -1 : a.stream > b.stream ? 1 : 0));
    const payload = sorted.map((a, i) => ({ i, s: a.stream, e: null, ev: a.events }));
    const { rows } = await client.query('SELECT o_status FROM es.append_batch($1::jsonb)', [
      JSON.stringify(payload),
    ]);
    expect(rows.every((r) => r.o_status === 'ok')).toBe(true);
    await sleep(holdMs);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
};

const rawAppender = async (index: number, appended: NewEvent[]): Promise<void> => {
  let remaining = EVENTS_PER_APPENDER;
  if (index === 0) {
    // The straggler: an early transaction that commits only after thousands of later ones.
    const events = newEvents(5);
    await appendInTransaction([{ stream: `slow-${index}`, events }], HELD_OPEN_MS);
    appended.push(...events);
    remaining -= events.length;
  }
  while (remaining > 0) {
    const appends = Array.from({ length: 1 + random(3) }, () => ({
      stream: `shared-${random(SHARED_STREAMS)}`,
      events: newEvents(Math.min(remaining, 1 + random(20))),
    }));
    const unique = [...new Map(appends.map((a) => [a.stream, a])).values()];
    let take = 0;
    const bounded = unique.filter((a) => {
      if (take >= remaining) return false;
      a.events = a.events.slice(0, remaining - take);
      take += a.events.length;
      return true;
    });
    await appendInTransaction(bounded, random(8));
    for (const a of bounded) appended.push(...a.events);
    remaining -= take;
  }
};

/** Group-committed single-event appends from several loops at once, interleaved with the raw writers. */
const groupCommitAppender = async (appended: NewEvent[]): Promise<void> => {
  let remaining = GROUP_COMMIT_EVENTS;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (remaining > 0) {
        remaining--;
        const events = newEvents(1);
        await store.append(`grouped-${random(SHARED_STREAMS)}`, events, 'any');
        appended.push(...events);
      }
    }),
  );
};

/** Checks in plain code and asserts once per property: 18,000 `expect` calls would dominate the run. */
const verify = (received: RecordedEvent[], appended: NewEvent[]) => {
  const ids = new Set(received.map((e) => e.id));
  const missing = appended.filter((e) => !ids.has(e.id));
  const lastRevision = new Map<string, number>();
  const outOfOrder: string[] = [];
  for (const e of received) {
    const expected = (lastRevision.get(e.streamId) ?? -1) + 1;
    if (e.revision !== expected) outOfOrder.push(`${e.streamId}@${e.revision} (expected ${expected})`);
    lastRevision.set(e.streamId, e.revision);
  }
  const unordered = received.filter((e, i) => i > 0 && e.position <= received[i - 1]!.position);
  expect(received).toHaveLength(appended.length);
  expect(ids.size).toBe(received.length);
  expect(missing).toEqual([]);
  expect(outOfOrder).toEqual([]);
  expect(unordered).toEqual([]);
};

describe('concurrent appenders and a live subscriber', () => {
  it('delivers every event exactly once, per stream in revision order, none skipped', async () => {
    const total = APPENDERS * EVENTS_PER_APPENDER + GROUP_COMMIT_EVENTS;
    // Started before any append, so everything it sees arrives live while commits interleave. Once the
    // appenders are done the subscribers get a grace period; a skipped event then fails with a count.
    const stop = new AbortController();
    const subscriber = collect(
      store,
      { fromPosition: START_POSITION, signal: stop.signal },
      (e) => e.length >= total,
    );
    const paged = collect(
      store,
      { fromPosition: START_POSITION, batchSize: 37, signal: stop.signal },
      (e) => e.length >= total,
    );
    await sleep(100);

    const appended: NewEvent[] = [];
    await Promise.all([
      ...Array.from({ length: APPENDERS }, (_, i) => rawAppender(i, appended)),
      groupCommitAppender(appended),
    ]);
    expect(appended).toHaveLength(total);
    const grace = setTimeout(() => stop.abort(), 5_000);

    const [received, receivedPaged] = await Promise.all([subscriber, paged]);
    verify(received, appended);
    verify(receivedPaged, appended);
    clearTimeout(grace);
    // The straggler committed last but was written first: it must still have been delivered.
    expect(received.some((e) => e.streamId === 'slow-0')).toBe(true);
    // And nothing more arrives after the last append.
    await expect(store.readAll({ fromPosition: received.at(-1)!.position })).resolves.toEqual([]);
  });
});
