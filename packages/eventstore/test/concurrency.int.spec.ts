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

type RawAppend = { stream: string; events: NewEvent[]; firstRevision: number };

/**
 * One raw transaction with random pauses before and after its writes while it stays open, so commits
 * land out of global-position order. It writes through the adapter's own SQL path (`es.append_batch`)
 * or, bypassing it, with plain INSERTs (own streams, revisions counted by the caller), which must take
 * the log's append lock through the trigger.
 */
const appendInTransaction = async (
  appends: RawAppend[],
  holdMs: number,
  route: 'append_batch' | 'insert',
): Promise<void> => {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await sleep(random(4));
    if (route === 'append_batch') {
      const payload = appends.map((a, i) => ({ i, s: a.stream, e: null, ev: a.events }));
      const { rows } = await client.query('SELECT o_status FROM es.append_batch($1::jsonb)', [
        JSON.stringify(payload),
      ]);
      expect(rows.every((r) => r.o_status === 'ok')).toBe(true);
    } else {
      for (const a of appends) {
        await client.query(
          `INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
           SELECT $1, $2::bigint + x.ord - 1, (x.v->>'id')::uuid, x.v->>'type', x.v->'data', x.v->'metadata'
             FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY AS x(v, ord)`,
          [a.stream, a.firstRevision, JSON.stringify(a.events)],
        );
      }
    }
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
  const ownRevisions = new Map<string, number>();
  const own = (stream: string, events: NewEvent[]): RawAppend => {
    const firstRevision = ownRevisions.get(stream) ?? 0;
    ownRevisions.set(stream, firstRevision + events.length);
    return { stream, events, firstRevision };
  };
  if (index === 0) {
    // The straggler: an early transaction that commits only after thousands of later ones would have,
    // written by plain INSERT so that only the trigger's lock orders it.
    const events = newEvents(5);
    await appendInTransaction([own(`slow-${index}`, events)], HELD_OPEN_MS, 'insert');
    appended.push(...events);
    remaining -= events.length;
  }
  while (remaining > 0) {
    const route = random(2) === 0 ? 'append_batch' : 'insert';
    const streams = Array.from({ length: 1 + random(3) }, () =>
      route === 'append_batch' ? `shared-${random(SHARED_STREAMS)}` : `own-${index}-${random(4)}`,
    );
    const appends: RawAppend[] = [];
    let take = 0;
    for (const stream of new Set(streams)) {
      if (take >= remaining) break;
      const events = newEvents(Math.min(remaining - take, 1 + random(20)));
      appends.push(route === 'append_batch' ? { stream, events, firstRevision: -1 } : own(stream, events));
      take += events.length;
    }
    await appendInTransaction(appends, random(8), route);
    for (const a of appends) appended.push(...a.events);
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
    // Once the appenders are done, the subscribers may take as long as they keep making progress (a
    // loaded host makes them lag); 5 s without a new event ends them, so a skipped event fails with a
    // count instead of a hang. The whole test stays bounded by collect's own timeout.
    const stop = new AbortController();
    const seen = [0, 0];
    const upTo = (i: number) => (e: RecordedEvent[]) => {
      seen[i] = e.length;
      return e.length >= total;
    };
    const subscriber = collect(
      store,
      { fromPosition: START_POSITION, signal: stop.signal },
      upTo(0),
      150_000,
    );
    const paged = collect(
      store,
      { fromPosition: START_POSITION, batchSize: 37, signal: stop.signal },
      upTo(1),
      150_000,
    );
    await sleep(100);

    const appended: NewEvent[] = [];
    await Promise.all([
      ...Array.from({ length: APPENDERS }, (_, i) => rawAppender(i, appended)),
      groupCommitAppender(appended),
    ]);
    expect(appended).toHaveLength(total);
    let last = -1;
    const grace = setInterval(() => {
      const progress = seen[0]! + seen[1]!;
      if (progress === last) stop.abort();
      last = progress;
    }, 5_000);

    const [received, receivedPaged] = await Promise.all([subscriber, paged]).finally(() =>
      clearInterval(grace),
    );
    verify(received, appended);
    verify(receivedPaged, appended);
    // The straggler committed last but was written first: it must still have been delivered.
    expect(received.some((e) => e.streamId === 'slow-0')).toBe(true);
    // And nothing more arrives after the last append.
    await expect(store.readAll({ fromPosition: received.at(-1)!.position })).resolves.toEqual([]);
  }, 180_000);
});
