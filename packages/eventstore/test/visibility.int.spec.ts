import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AppendLockTimeoutError,
  createPostgresEventStore,
  migrateEventStore,
  type PostgresEventStore,
  STORE_SESSION_OPTIONS,
} from '../src/index.js';
import { newEvents, sleep, subscribeFromHead, uniqueCategory } from './helpers.js';

// What a subscriber waits for (DESIGN.md: a long transaction anywhere on the cluster never holds live
// delivery back by more than it holds back its own events). Transactions that append nothing hold back
// nothing; an open appender holds back only the appends queued behind it, and nothing it precedes is
// skipped once it commits.

/** How long the long transactions of these tests stay open at most. */
const LONG_TRANSACTION_MS = 10_000;

let database: TestDatabase;
let otherDatabase: TestDatabase;
let pool: pg.Pool;
let store: PostgresEventStore;

beforeAll(async () => {
  [database, otherDatabase] = await Promise.all([
    createTestDatabase('esvisibility'),
    createTestDatabase('esother'),
  ]);
  pool = new pg.Pool({ connectionString: database.url, max: 6 });
  await migrateEventStore(pool);
  // Polling far slower than any wait here: deliveries come from NOTIFY wake-ups.
  store = createPostgresEventStore({ connectionString: database.url, pollIntervalMs: 30_000 });
});

afterAll(async () => {
  await store?.close();
  await pool?.end();
  await Promise.all([database?.drop(), otherDatabase?.drop()]);
});

const subscribe = (category: string) => subscribeFromHead(store, category);

/** The oldest transaction id still running anywhere on the cluster, as the event store's database sees it. */
const clusterXmin = async (): Promise<bigint> => {
  const { rows } = await pool.query<{ xmin: string }>(
    'SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin',
  );
  return BigInt(rows[0]!.xmin);
};

/**
 * Opens a transaction that holds a transaction id (so it holds back the cluster-wide xmin) and stays
 * idle until `end()` or LONG_TRANSACTION_MS, whichever first. `facts` records when it ended.
 */
const openLongTransaction = async (url: string, facts: string[], firstWrite?: string) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('BEGIN');
  if (firstWrite) await client.query(firstWrite);
  const { rows } = await client.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
  let ended: Promise<void> | undefined;
  const end = () => {
    ended ??= (async () => {
      clearTimeout(timer);
      await client.query('COMMIT');
      facts.push('long transaction ended');
      await client.end();
    })();
    return ended;
  };
  const timer = setTimeout(() => void end(), LONG_TRANSACTION_MS);
  return { xid: BigInt(rows[0]!.xid), end };
};

/** Appends while a long transaction is open and checks the subscriber had the event before it ended. */
const deliveredWhileOpen = async (url: string, firstWrite?: string) => {
  const category = uniqueCategory('live');
  const subscription = await subscribe(category);
  const facts: string[] = [];
  const long = await openLongTransaction(url, facts, firstWrite);
  try {
    // The scenario is real: the long transaction holds back the horizon readers used to wait for.
    expect(await clusterXmin()).toBeLessThanOrEqual(long.xid);
    await store.append(`${category}-1`, newEvents(1), 'no_stream');
    await waitFor(() => subscription.received.length > 0 || facts.length > 0, {
      timeoutMs: LONG_TRANSACTION_MS + 5_000,
      what: 'delivery or the end of the long transaction',
    });
    if (subscription.received.length > 0) facts.push('event delivered');
  } finally {
    await long.end();
    await subscription.stop();
  }
  expect(facts).toEqual(['event delivered', 'long transaction ended']);
  expect(subscription.received.map((e) => e.streamId)).toEqual([`${category}-1`]);
};

describe('what live delivery waits for', () => {
  it('does not wait for an idle transaction in another database of the cluster', async () => {
    await deliveredWhileOpen(otherDatabase.url);
  });

  it('does not wait for a long transaction in the same database that appends nothing', async () => {
    await pool.query('CREATE TABLE IF NOT EXISTS side_effects (note text)');
    await deliveredWhileOpen(database.url, `INSERT INTO side_effects VALUES ('written first')`);
  });

  it('holds back only the appends behind an open appender, and skips nothing when it commits', async () => {
    const category = uniqueCategory('held');
    const subscription = await subscribe(category);
    const facts: string[] = [];
    const before = await store.append(`${category}-before`, newEvents(1), 'no_stream');
    await waitFor(() => subscription.received.length === 1, { what: 'the event before' });

    // An appender that stays open: it holds the log's append lock with its event uncommitted.
    const open = await pool.connect();
    let behind: Promise<unknown> | undefined;
    try {
      await open.query('BEGIN');
      await open.query('SELECT o_status FROM es.append_batch($1::jsonb)', [
        JSON.stringify([{ i: 0, s: `${category}-open`, e: null, ev: newEvents(1) }]),
      ]);
      behind = store.append(`${category}-behind`, newEvents(1), 'no_stream').then(() => {
        facts.push('append behind committed');
      });
      // Reads do not queue behind it: the head is still the last committed event.
      expect(await store.headPosition()).toBe(before.position);
      await sleep(300);
      facts.push('open appender commits');
      await open.query('COMMIT');
    } finally {
      await open.query('ROLLBACK').catch(() => undefined);
      open.release();
    }
    await behind;
    await waitFor(() => subscription.received.length === 3, { what: 'both later events' });
    await subscription.stop();
    expect(facts).toEqual(['open appender commits', 'append behind committed']);
    expect(subscription.received.map((e) => e.streamId)).toEqual([
      `${category}-before`,
      `${category}-open`,
      `${category}-behind`,
    ]);
    const positions = subscription.received.map((e) => e.position);
    expect([...positions].sort()).toEqual(positions);
  });

  it('fails an append that waits too long for the lock with a named error, appending nothing', async () => {
    const impatient = new pg.Pool({
      connectionString: database.url,
      max: 2,
      options: `${STORE_SESSION_OPTIONS} -c es.append_lock_timeout=200ms`,
    });
    const impatientStore = createPostgresEventStore({ pool: impatient });
    const category = uniqueCategory('timeout');
    const open = await pool.connect();
    try {
      await open.query('BEGIN');
      await open.query(
        `INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
         VALUES ($1, 0, gen_random_uuid(), 'Raw', '{}', '{}')`,
        [`${category}-raw`],
      );
      const { rows } = await open.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const refused = impatientStore.append(`${category}-1`, newEvents(1), 'no_stream');
      await expect(refused).rejects.toBeInstanceOf(AppendLockTimeoutError);
      await expect(refused).rejects.toThrow(new RegExp(`pid ${rows[0]!.pid}\\b.*idle in transaction`));
      await open.query('COMMIT');
    } finally {
      await open.query('ROLLBACK').catch(() => undefined);
      open.release();
    }
    expect(await impatientStore.streamRevision(`${category}-1`)).toBe(-1);
    await expect(impatientStore.append(`${category}-1`, newEvents(1), 'no_stream')).resolves.toMatchObject({
      nextExpectedRevision: 0,
    });
    await impatientStore.close();
    await impatient.end();
  });

  it('refuses events from a transaction that had a transaction id before it appended', async () => {
    const category = uniqueCategory('late-id');
    const client = await pool.connect();
    try {
      for (const write of [
        `INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
         VALUES ('${category}-raw', 0, gen_random_uuid(), 'Raw', '{}', '{}')`,
        `SELECT * FROM es.append_batch('${JSON.stringify([{ i: 0, s: `${category}-1`, e: null, ev: newEvents(1) }])}')`,
      ]) {
        await client.query('BEGIN');
        await client.query('SELECT pg_current_xact_id()');
        await expect(client.query(write)).rejects.toThrow(/first write of its transaction/);
        await client.query('ROLLBACK');
      }
    } finally {
      client.release();
    }
    const { rows } = await pool.query('SELECT 1 FROM es.events WHERE stream_id LIKE $1', [`${category}%`]);
    expect(rows).toEqual([]);
  });
});
