import { upcasters } from '@chat/events';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createPostgresEventStore,
  EventIdConflictError,
  migrateEventStore,
  type PostgresEventStore,
  WrongExpectedVersionError,
} from '../src/index.js';
import { describeEventStoreContract } from './contract.js';
import {
  keyedPages,
  newEvent,
  newEvents,
  sleep,
  subscribeFromHead,
  uniqueCategory,
  untilVisible,
} from './helpers.js';

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('eventstore');
  pool = new pg.Pool({ connectionString: database.url, max: 8 });
  // Several processes may start at once; the migration must survive racing itself.
  await Promise.all([migrateEventStore(pool), migrateEventStore(pool), migrateEventStore(database.url)]);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

describeEventStoreContract('postgres', async () => {
  const store = createPostgresEventStore({ connectionString: database.url, pollIntervalMs: 100 });
  return { store, teardown: () => store.close() };
});

describe('postgres adapter', () => {
  let store: PostgresEventStore;
  beforeAll(() => {
    store = createPostgresEventStore({ pool, pollIntervalMs: 100 });
  });
  afterAll(async () => {
    await store.close();
  });

  it('migrates idempotently', async () => {
    await migrateEventStore(pool);
    const { rows } = await pool.query(
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'es' ORDER BY 1`,
    );
    expect(rows.map((r) => r.table_name)).toEqual(['events', 'streams']);
  });

  it('refuses UPDATE, DELETE and TRUNCATE of events', async () => {
    const stream = `${uniqueCategory('immutable')}-1`;
    await store.append(stream, newEvents(1), 'no_stream');
    await expect(
      pool.query(`UPDATE es.events SET type = 'X' WHERE stream_id = $1`, [stream]),
    ).rejects.toThrow(/append-only/);
    await expect(pool.query('DELETE FROM es.events WHERE stream_id = $1', [stream])).rejects.toThrow(
      /append-only/,
    );
    await expect(pool.query('TRUNCATE es.events')).rejects.toThrow(/append-only/);
    // The scavenger's setting is transaction-local: it does not leak into the session.
    await pool.query(`SELECT es.scavenge_expired()`);
    await expect(pool.query('DELETE FROM es.events WHERE stream_id = $1', [stream])).rejects.toThrow(
      /append-only/,
    );
    expect(await store.readStream(stream)).toHaveLength(1);
  });

  it('scavenges expired events of max-age streams only', async () => {
    const typing = `${uniqueCategory('typing')}-1`;
    const kept = `${uniqueCategory('conversation')}-1`;
    await store.setStreamMetadata(typing, { maxAgeSeconds: 1 });
    await store.append(typing, newEvents(3), 'no_stream');
    await store.append(kept, newEvents(3), 'no_stream');
    await store.scavengeExpired();
    expect(await store.readStream(typing)).toHaveLength(3);
    await sleep(1_100);
    await store.append(typing, newEvents(1), 2);
    // Other tests' expired streams share this database, hence at least.
    expect(await store.scavengeExpired()).toBeGreaterThanOrEqual(3);
    const { rows } = await pool.query(
      'SELECT stream_id, revision FROM es.events WHERE stream_id = ANY ($1)',
      [[typing, kept]],
    );
    expect(rows.filter((r) => r.stream_id === typing).map((r) => Number(r.revision))).toEqual([3]);
    expect(rows.filter((r) => r.stream_id === kept)).toHaveLength(3);
    expect(await store.streamRevision(typing)).toBe(3);
  });

  it('runs the scavenger on an interval when asked', async () => {
    const scavenging = createPostgresEventStore({ pool, scavengeIntervalMs: 200 });
    try {
      const typing = `${uniqueCategory('typing')}-1`;
      await scavenging.setStreamMetadata(typing, { maxAgeSeconds: 1 });
      await scavenging.append(typing, newEvents(2), 'no_stream');
      await sleep(1_600);
      const { rows } = await pool.query('SELECT count(*)::int AS n FROM es.events WHERE stream_id = $1', [
        typing,
      ]);
      expect(rows[0].n).toBe(0);
    } finally {
      await scavenging.close();
    }
  });

  it("fails only the offending append of a group, not its neighbours'", async () => {
    const category = uniqueCategory('group');
    const reused = newEvent();
    await store.append(`${category}-owner`, [reused], 'no_stream');
    const outcomes = await Promise.allSettled([
      store.append(`${category}-1`, newEvents(2), 'no_stream'),
      store.append(`${category}-2`, [reused], 'any'),
      store.append(`${category}-3`, [newEvent(), reused], 'any'),
      store.append(`${category}-1`, newEvents(1), 5),
      store.append(`${category}-4`, newEvents(1), 'no_stream'),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual([
      'fulfilled',
      'rejected',
      'rejected',
      'rejected',
      'fulfilled',
    ]);
    const reasons = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason] : []));
    expect(reasons[0]).toBeInstanceOf(EventIdConflictError);
    expect(reasons[1]).toBeInstanceOf(EventIdConflictError);
    expect(reasons[2]).toBeInstanceOf(WrongExpectedVersionError);
    expect(await store.streamRevision(`${category}-2`)).toBe(-1);
    expect(await store.readStream(`${category}-3`)).toEqual([]);
  });

  it("answers an append with its events' occurredAt as stored, and an idempotent repeat without one", async () => {
    const category = uniqueCategory('occurred');
    const events = [newEvent(), newEvent(), newEvent()];
    // One group commit (one transaction) and then a later one: each answer has its own transaction's time.
    const first = await Promise.all(events.map((e, i) => store.append(`${category}-${i}`, [e], 'no_stream')));
    await sleep(20);
    const later = await store.append(`${category}-0`, [newEvent()], 0);
    const answers = [
      ...first.map((r, i) => [r, `${category}-${i}`, 0] as const),
      [later, `${category}-0`, 1] as const,
    ];
    for (const [result, stream, revision] of answers) {
      const [read] = await store.readStream(stream, { fromRevision: revision });
      expect(result.occurredAt).toBe(read!.occurredAt);
    }
    expect(later.occurredAt! > first[0]!.occurredAt!).toBe(true);
    const repeat = await store.append(`${category}-1`, [events[1]!], 'any');
    expect(repeat).toEqual({ nextExpectedRevision: 0, position: first[1]!.position });
  });

  it('wakes subscribers by NOTIFY, also after a plain INSERT that bypassed es.append_batch', async () => {
    // A poll interval far longer than the test: delivery within it proves the wake-ups work.
    const slowPolling = createPostgresEventStore({ pool, pollIntervalMs: 30_000 });
    const category = uniqueCategory('wake');
    let subscription: Awaited<ReturnType<typeof subscribeFromHead>> | undefined;
    try {
      subscription = await subscribeFromHead(slowPolling, category);
      const received = subscription.received;
      await sleep(200);
      await slowPolling.append(`${category}-1`, newEvents(1), 'any');
      await waitFor(() => received.length === 1, { timeoutMs: 5_000, what: 'notified delivery' });
      await pool.query(
        `INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
         VALUES ($1, 0, gen_random_uuid(), 'Raw', '{}', '{}')`,
        [`${category}-raw`],
      );
      await waitFor(() => received.length === 2, { timeoutMs: 5_000, what: 'delivery of the INSERT' });
      expect(received.map((e) => e.streamId)).toEqual([`${category}-1`, `${category}-raw`]);
    } finally {
      await subscription?.stop();
      await slowPolling.close();
    }
  });

  it('reads pages without keys in a database without the key tables, the subscription going on', async () => {
    const category = uniqueCategory('keyless');
    const from = await store.headPosition();
    await store.append(`${category}-1`, [newEvent('MessageSent', { senderId: 'u', body: 'plain' })], 'any');
    const pages = keyedPages(store, from, category);
    const first = await pages.next();
    const next = pages.next();
    await store.append(`${category}-2`, newEvents(1), 'any');
    const second = await next;
    await pages.stop();
    expect(first.events.map((e) => e.data.body)).toEqual(['plain']);
    expect(first.dataKeys.size).toBe(0);
    expect(second.events.map((e) => e.streamId)).toEqual([`${category}-2`]);
  });

  it('upcasts older event shapes as they are read', async () => {
    const type = `Upcast${uniqueCategory('')}`;
    upcasters.register(type, 1, (data) => ({ ...data, renamed: data.old, old: undefined }));
    const stream = `${uniqueCategory('upcast')}-1`;
    await untilVisible(
      store,
      (await store.append(stream, [newEvent(type, { old: 'v' })], 'no_stream')).position,
    );
    const [event] = await store.readStream(stream);
    expect(event?.data).toMatchObject({ renamed: 'v' });
    expect(event?.metadata.schemaVersion).toBe(2);
    const [fromLog] = await store.readAll({ filter: { eventTypes: [type] } });
    expect(fromLog?.data).toMatchObject({ renamed: 'v' });
  });
});
