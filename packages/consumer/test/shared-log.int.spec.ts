import { randomUUID } from 'node:crypto';
import {
  createPostgresEventStore,
  type EventFilter,
  type EventStore,
  migrateEventStore,
  type NewEvent,
  type RecordedEvent,
  START_POSITION,
} from '@chat/eventstore';
import { createTestDatabase, type TestDatabase } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shareLog } from '../src/shared-log.js';

// One read of the log feeding several subscribers (the projector process: projection + relay), against
// a real Postgres store: each subscriber must get exactly what a subscription of its own would.

let database: TestDatabase;
let pool: pg.Pool;
let store: EventStore;
/** Subscriptions opened on the inner store, by filter. */
let innerSubscriptions: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase('shared_log');
  pool = new pg.Pool({ connectionString: database.url, max: 6 });
  await migrateEventStore(pool);
  const postgres = createPostgresEventStore({ pool, pollIntervalMs: 50 });
  store = {
    ...postgres,
    subscribeToAll: (options) => {
      innerSubscriptions.push(JSON.stringify(options?.filter ?? null));
      return postgres.subscribeToAll(options);
    },
  };
});

afterAll(async () => {
  await store?.close();
  await pool?.end();
  await database?.drop();
});

const meta = { userId: 'u', correlationId: 'c', causationId: null, schemaVersion: 1 };
const events = (n: number, type = 'Toy'): NewEvent[] =>
  Array.from({ length: n }, (_, i) => ({ id: randomUUID(), type, data: { i }, metadata: meta }));

const A: EventFilter = { streamPrefixes: ['a-'] };
const AB: EventFilter = { streamPrefixes: ['a-', 'b-'] };
const TYPED: EventFilter = { streamPrefixes: ['b-'], eventTypes: ['Kept'] };

/** Everything the store holds for `filter` after `from`, read page by page. */
const expected = async (filter: EventFilter, from = START_POSITION): Promise<string[]> => {
  const out: string[] = [];
  for (let cursor = from; ; ) {
    const page = await store.readAll({ fromPosition: cursor, filter, maxCount: 1000 });
    out.push(...page.map((e) => e.id));
    if (page.length < 1000) return out;
    cursor = (page.at(-1) as RecordedEvent).position;
  }
};

/** Consumes a subscription until it has `count` events (or 20 s pass); `slowMs` per batch. */
const collect = async (
  log: EventStore,
  options: { filter: EventFilter; batchSize: number; from?: string; slowMs?: number },
  count: () => number,
) => {
  const stop = new AbortController();
  const got: RecordedEvent[] = [];
  const sizes: number[] = [];
  const deadline = setTimeout(() => stop.abort(), 20_000);
  // A subscriber that has everything waits for more: end it once the test knows how many to expect.
  const check = setInterval(() => got.length >= count() && stop.abort(), 20);
  try {
    for await (const batch of log.subscribeToAll({
      filter: options.filter,
      batchSize: options.batchSize,
      fromPosition: options.from ?? START_POSITION,
      signal: stop.signal,
    })) {
      got.push(...batch);
      sizes.push(batch.length);
      if (options.slowMs) await new Promise((r) => setTimeout(r, options.slowMs));
      if (got.length >= count()) break;
    }
  } finally {
    clearTimeout(deadline);
    clearInterval(check);
  }
  return { ids: got.map((e) => e.id), positions: got.map((e) => e.position), sizes };
};

const appendMany = async (prefix: string, batches: number, size: number, type = 'Toy') => {
  for (let i = 0; i < batches; i++) await store.append(`${prefix}-${i % 3}`, events(size, type), 'any');
};

describe('shareLog', () => {
  it('serves each subscriber its own filter and batch size from one read, live and after a late start', async () => {
    innerSubscriptions = [];
    const log = shareLog(store, { filters: [A, AB, TYPED], batchSize: 50, bufferMax: 60 });
    // History: the late subscriber starts far behind the shared window (more than one page of its own).
    await appendMany('a', 10, 7);
    await appendMany('b', 10, 5);
    await appendMany('b', 4, 3, 'Kept');
    await appendMany('c', 5, 5);
    const historyAB = (await expected(AB)).length;
    const head = await store.headPosition();

    // One subscriber from the head (live), one from the start, and later one behind both.
    let target = { a: Infinity, ab: Infinity, typed: Infinity };
    const live = collect(log, { filter: A, batchSize: 4, from: head }, () => target.a);
    const all = collect(log, { filter: AB, batchSize: 9, slowMs: 5 }, () => target.ab);
    await new Promise((r) => setTimeout(r, 200));
    // Live traffic while they run: many small appends in all streams.
    const writer = (async () => {
      for (let i = 0; i < 30; i++) {
        await store.append(
          `${['a', 'b', 'c'][i % 3]}-${i % 4}`,
          events(1 + (i % 4), i % 5 === 0 ? 'Kept' : 'Toy'),
          'any',
        );
      }
    })();
    await new Promise((r) => setTimeout(r, 100));
    const typed = collect(log, { filter: TYPED, batchSize: 2 }, () => target.typed);
    await writer;

    const expectA = await expected(A, head);
    const expectAB = await expected(AB);
    const expectTyped = await expected(TYPED);
    target = { a: expectA.length, ab: expectAB.length, typed: expectTyped.length };
    expect(expectAB.length).toBeGreaterThan(historyAB);
    // Each got exactly its filter's events after its start, in log order, none twice, none skipped.
    const [gotA, gotAB, gotTyped] = await Promise.all([live, all, typed]);
    expect(gotA.ids).toEqual(expectA);
    expect(gotAB.ids).toEqual(expectAB);
    expect(gotTyped.ids).toEqual(expectTyped);
    // Batches no larger than each asked for.
    expect(Math.max(...gotA.sizes)).toBeLessThanOrEqual(4);
    expect(Math.max(...gotAB.sizes)).toBeLessThanOrEqual(9);
    expect(Math.max(...gotTyped.sizes)).toBeLessThanOrEqual(2);
    // One read of the log (the union of the filters) served them; the late one read pages of its own
    // only to catch up with it.
    expect(innerSubscriptions).toEqual([JSON.stringify({ streamPrefixes: ['a-', 'b-'] })]);
    expect(log.stats.ownPages).toBeGreaterThan(0);
  });

  it('a subscriber slower than the others by more than the window reads on its own and loses nothing', async () => {
    innerSubscriptions = [];
    const log = shareLog(store, { filters: [A, AB], batchSize: 20, bufferMax: 20 });
    const from = await store.headPosition();
    let target = { fast: Infinity, slow: Infinity };
    const fast = collect(log, { filter: AB, batchSize: 20, from }, () => target.fast);
    const slow = collect(log, { filter: A, batchSize: 3, from, slowMs: 15 }, () => target.slow);
    await appendMany('a', 40, 4);
    await appendMany('b', 20, 2);
    target = { fast: (await expected(AB, from)).length, slow: (await expected(A, from)).length };
    const [gotFast, gotSlow] = await Promise.all([fast, slow]);
    expect(gotFast.ids).toEqual(await expected(AB, from));
    expect(gotSlow.ids).toEqual(await expected(A, from));
    expect(new Set(gotSlow.positions).size).toBe(gotSlow.positions.length);
    expect(log.stats.ownPages).toBeGreaterThan(0);
    expect(innerSubscriptions.length).toBeGreaterThanOrEqual(1);
  });

  it('a filter it was not told about reads alone; other methods are the inner store', async () => {
    innerSubscriptions = [];
    const log = shareLog(store, { filters: [A] });
    const other: EventFilter = { streamPrefixes: ['c-'] };
    const want = await expected(other);
    const got = await collect(log, { filter: other, batchSize: 100 }, () => want.length);
    expect(got.ids).toEqual(want);
    expect(innerSubscriptions).toEqual([JSON.stringify(other)]);
    expect(await log.headPosition()).toBe(await store.headPosition());
  });
});
