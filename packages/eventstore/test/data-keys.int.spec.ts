import { randomBytes, randomUUID } from 'node:crypto';
import { createLogger } from '@chat/platform';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDataKeyStore,
  createEventStore,
  createPgDataKeyStore,
  createPostgresEventStore,
  type DataKeyStore,
  EncryptingEventStore,
  ErasedUserError,
  type EventStore,
  migrateEventStore,
  open,
  type StoredDataKey,
  seal,
  UnknownDataKeyError,
} from '../src/index.js';
import { KEY_TABLES, keyedPages, newEvent, subscribeFromHead, uniqueCategory } from './helpers.js';

const master = randomBytes(32);
let database: TestDatabase;
let admin: pg.Pool;
const stores: DataKeyStore[] = [];
const newStore = () => {
  const store = createPgDataKeyStore({ connectionString: database.url, master });
  stores.push(store);
  return store;
};

/**
 * Transactions that created the keys of `users`: rows one transaction inserted share its xmin. (Not
 * pg_stat_statements: that needs the extension preloaded, which a fresh Postgres is not.)
 */
const creatingTransactions = async (users: readonly string[]): Promise<number> => {
  const { rows } = await admin.query<{ n: number }>(
    'SELECT count(DISTINCT xmin::text)::int AS n FROM keys.user_data_keys WHERE user_id = ANY($1::text[])',
    [users],
  );
  return rows[0]?.n ?? 0;
};

/** An encrypting event store (a process writing and reading the log) with its own key store. */
const logs: EventStore[] = [];
const newLog = () => {
  const log = new EncryptingEventStore(
    createPostgresEventStore({ connectionString: database.url, maxConnections: 4 }),
    // Closed with the log.
    createPgDataKeyStore({ connectionString: database.url, master }),
  );
  logs.push(log);
  return log;
};
const sent = (senderId: string, body: string) =>
  newEvent('MessageSent', { conversationId: 'c', messageId: 'm', senderId, body });

beforeAll(async () => {
  database = await createTestDatabase('datakeys');
  admin = new pg.Pool({ connectionString: database.url, max: 1 });
  await admin.query(KEY_TABLES);
  await migrateEventStore(database.url);
});

afterAll(async () => {
  await Promise.all(logs.map((s) => s.close()));
  await Promise.all(stores.map((s) => s.close()));
  await admin.end();
  await database.drop();
});

describe('seal / open', () => {
  it('round-trips strings and buffers, and refuses another aad', () => {
    const key = randomBytes(32);
    expect(open(key, seal(key, 'héllo ✓', 'e:body'), 'e:body').toString('utf8')).toBe('héllo ✓');
    expect(open(key, seal(key, Buffer.from([1, 2, 3]), 'a'), 'a')).toEqual(Buffer.from([1, 2, 3]));
    expect(open(key, seal(key, '', 'a'), 'a').length).toBe(0);
    expect(() => open(key, seal(key, 'x', 'a'), 'b')).toThrow();
  });

  it('never repeats an IV, across refills of the IV pool', () => {
    const key = randomBytes(32);
    const ivs = new Set<string>();
    for (let i = 0; i < 10_000; i++) ivs.add(seal(key, 'x', 'a').subarray(0, 12).toString('hex'));
    expect(ivs.size).toBe(10_000);
  });
});

describe('keyForWriting', () => {
  it('creates the first keys of concurrent new writers together, one key per user, then serves them from the cache', async () => {
    const store = newStore();
    await store.keyForWriting('warm-up'); // the LISTEN connection and the first statement
    const users = Array.from({ length: 40 }, (_, i) => `writer-${i}`);
    const keys = await Promise.all([...users, ...users].map((u) => store.keyForWriting(u)));
    // One statement for the first user, one for everyone who arrived while it ran.
    expect(await creatingTransactions(users)).toBeLessThanOrEqual(2);
    for (let i = 0; i < users.length; i++) expect(keys[i + users.length]?.kid).toBe(keys[i]?.kid);
    expect(new Set(keys.map((k) => k.kid)).size).toBe(users.length);
    const again = await store.keyForWriting('writer-7');
    expect(again.kid).toBe(keys[7]?.kid);
    expect(await creatingTransactions(users)).toBeLessThanOrEqual(2);
    // What another process reads is the key this one writes with.
    const reader = newStore();
    const read = await reader.keysForReading(keys.map((k) => k.kid));
    for (const k of keys) expect(read.get(k.kid)?.equals(k.key)).toBe(true);
  });

  it('gives two processes creating one user at once the same key', async () => {
    const [a, b] = [newStore(), newStore()];
    const [ka, kb] = await Promise.all([a.keyForWriting('both'), b.keyForWriting('both')]);
    expect(ka.kid).toBe(kb.kid);
    expect(ka.key.equals(kb.key)).toBe(true);
  });

  it('refuses an erased user at once in the erasing process, and after the notification in another', async () => {
    const [eraser, other] = [newStore(), newStore()];
    const before = await eraser.keyForWriting('leaving');
    expect((await other.keyForWriting('leaving')).kid).toBe(before.kid);
    expect((await eraser.erase('leaving')).erasedNow).toBe(true);
    await expect(eraser.keyForWriting('leaving')).rejects.toBeInstanceOf(ErasedUserError);
    await waitFor(
      () =>
        other.keyForWriting('leaving').then(
          () => false,
          (err: unknown) => err instanceof ErasedUserError,
        ),
      { what: 'the other process refusing the erased user' },
    );
    expect((await other.keysForReading([before.kid])).get(before.kid)).toBeNull();
    // Erased users in a batch of new writers are refused alone.
    const results = await Promise.allSettled(
      ['leaving', 'fresh-2', 'fresh-3'].map((u) => eraser.keyForWriting(u)),
    );
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'fulfilled']);
  });
});

describe('keys stored with the events sealed with them (appendWithKeys)', () => {
  /** The transaction that stored the user's key, and those that appended events to `stream`. */
  const transactions = async (userId: string, stream: string) => {
    const key = await admin.query<{ xmin: string }>(
      'SELECT xmin::text FROM keys.user_data_keys WHERE user_id = $1',
      [userId],
    );
    const events = await admin.query<{ tx: string }>(
      'SELECT DISTINCT transaction_id::text AS tx FROM es.events WHERE stream_id = $1',
      [stream],
    );
    return { key: key.rows[0]?.xmin, events: events.rows.map((r) => r.tx) };
  };

  it("stores a new writer's key in the transaction of their first message: one commit, readable elsewhere", async () => {
    const log = newLog();
    const stream = uniqueCategory('first');
    await log.append(stream, [sent('first-writer', 'hello')], 'no_stream');
    const { key, events } = await transactions('first-writer', stream);
    expect(events).toHaveLength(1);
    // xmin is the 32-bit xid; transaction_id the 64-bit one (epoch in the high bits).
    expect(BigInt(events[0]!) % 2n ** 32n).toBe(BigInt(key!));
    // Cached after the commit: the next message carries no key.
    await log.append(stream, [sent('first-writer', 'again')], 0);
    expect((await transactions('first-writer', stream)).key).toBe(key);
    const read = await newLog().readStream(stream);
    expect(read.map((e) => e.data.body)).toEqual(['hello', 'again']);
  });

  it('shares one new key among concurrent first messages of a writer, and a group commit among writers', async () => {
    const log = newLog();
    const writers = Array.from({ length: 20 }, (_, i) => `burst-${i}`);
    const streams = writers.map((w) => uniqueCategory(w));
    await Promise.all(
      writers.flatMap((w, i) => [
        log.append(streams[i]!, [sent(w, `${w} one`)], 'any'),
        log.append(streams[i]!, [sent(w, `${w} two`)], 'any'),
      ]),
    );
    const reader = newLog();
    for (const [i, w] of writers.entries()) {
      const read = await reader.readStream(streams[i]!);
      expect(read.map((e) => e.data.body).sort()).toEqual([`${w} one`, `${w} two`]);
    }
    expect(await creatingTransactions(writers)).toBeLessThanOrEqual(3);
  });

  it("seals with the key another process stored first, when the writer's key is not this process's", async () => {
    const [a, b] = [newLog(), newLog()];
    const stream = uniqueCategory('two-processes');
    await a.append(stream, [sent('two-procs', 'from a')], 'any');
    await b.append(stream, [sent('two-procs', 'from b')], 'any');
    const read = await newLog().readStream(stream);
    expect(read.map((e) => e.data.body)).toEqual(['from a', 'from b']);
    const raw = await admin.query<{ kid: string }>(
      "SELECT data->'body'->>'kid' AS kid FROM es.events WHERE stream_id = $1",
      [stream],
    );
    expect(new Set(raw.rows.map((r) => r.kid)).size).toBe(1);
  });

  it('refuses a new key for an erased writer (ErasedUserError, nothing appended), also in a group with others', async () => {
    const eraser = newStore();
    await eraser.erase('gone-before-writing');
    const log = newLog();
    const [gone, fine] = [uniqueCategory('gone'), uniqueCategory('fine')];
    const results = await Promise.allSettled([
      log.append(gone, [sent('gone-before-writing', 'x')], 'any'),
      log.append(fine, [sent('still-here', 'y')], 'any'),
    ]);
    expect(results[0]).toMatchObject({ status: 'rejected', reason: expect.any(ErasedUserError) });
    expect(results[1]?.status).toBe('fulfilled');
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM es.events WHERE stream_id = $1',
      [gone],
    );
    expect(rows[0]?.n).toBe(0);
    const key = await admin.query('SELECT 1 FROM keys.user_data_keys WHERE user_id = $1', [
      'gone-before-writing',
    ]);
    expect(key.rowCount).toBe(0);
  });

  it('refuses a cached key past its TTL once its writer was erased elsewhere (the append checks it)', async () => {
    const keys = createPgDataKeyStore({ connectionString: database.url, master, cacheTtlMs: 0 });
    const log = new EncryptingEventStore(createPostgresEventStore({ connectionString: database.url }), keys);
    logs.push(log);
    const stream = uniqueCategory('ttl');
    await log.append(stream, [sent('ttl-writer', 'before')], 'any');
    // Erased with a statement of its own: no NOTIFY reaches this process's key store.
    await admin.query(
      `WITH d AS (DELETE FROM keys.user_data_keys WHERE user_id = 'ttl-writer' RETURNING kid)
       INSERT INTO keys.erased_users (user_id, kid) SELECT 'ttl-writer', kid FROM d`,
    );
    await expect(log.append(stream, [sent('ttl-writer', 'after')], 'any')).rejects.toBeInstanceOf(
      ErasedUserError,
    );
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM es.events WHERE stream_id = $1',
      [stream],
    );
    expect(rows[0]?.n).toBe(1);
  });

  it("an erasure waits for the transaction storing the writer's first key, and then destroys it", async () => {
    const stream = uniqueCategory('race');
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      // An append transaction holding the writer's key lock, its key stored, not yet committed.
      await client.query('BEGIN');
      await client.query('SELECT es.append_batch($1::jsonb)', [
        JSON.stringify([
          {
            i: 0,
            s: stream,
            e: null,
            ev: [{ id: randomUUID(), type: 'TestHappened', data: {}, metadata: {} }],
            k: [{ u: 'racer', k: randomUUID(), w: randomBytes(60).toString('base64') }],
          },
        ]),
      ]);
      const erasing = newStore().erase('racer');
      await new Promise((r) => setTimeout(r, 300));
      await client.query('COMMIT');
      expect((await erasing).erasedNow).toBe(true);
    } finally {
      await client.end();
    }
    const key = await admin.query('SELECT 1 FROM keys.user_data_keys WHERE user_id = $1', ['racer']);
    expect(key.rowCount).toBe(0);
    const tomb = await admin.query<{ kid: string | null }>(
      'SELECT kid::text FROM keys.erased_users WHERE user_id = $1',
      ['racer'],
    );
    expect(tomb.rows[0]?.kid).not.toBeNull();
  });
});

describe('one LISTEN connection per process', () => {
  /** The event store as a service builds it (`createEventStore` with `createDataKeyStore`). */
  const newServiceLog = () => {
    const logger = createLogger('test', 'silent');
    const log = createEventStore({
      databaseUrl: database.url,
      logger,
      dataKeys: createDataKeyStore({ databaseUrl: database.url, master: master.toString('hex'), logger }),
    });
    logs.push(log);
    return log;
  };

  /** Backends of the test database that LISTEN (their last statement was a LISTEN). */
  const listeningBackends = async () =>
    (
      await admin.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND query LIKE 'LISTEN%'`,
      )
    ).rows[0]?.n ?? 0;

  it('carries both the log’s wake-ups and the erasures when the event store shares the key store’s', async () => {
    // Every LISTEN connection is a backend PostgreSQL wakes on every append's NOTIFY, whatever its channel.
    // The other process (writer and eraser) listens before the count starts.
    const [writer, eraser] = [newLog(), newStore()];
    await eraser.keyForWriting('warm-up');
    await writer.append(`${uniqueCategory('warm-up')}-1`, [sent('writer', 'warm-up')], 'any');
    const before = await listeningBackends();
    const keys = createPgDataKeyStore({ connectionString: database.url, master });
    // A poll interval far longer than the test: delivery within it proves the wake-up travelled.
    const log = new EncryptingEventStore(
      createPostgresEventStore({
        connectionString: database.url,
        pollIntervalMs: 30_000,
        listener: keys.listener,
      }),
      keys,
    );
    logs.push(log);
    const category = uniqueCategory('shared-listen');
    const { received, stop } = await subscribeFromHead(log, category);
    const { kid } = await keys.keyForWriting('sharer');

    await writer.append(`${category}-1`, [sent('writer', 'hello')], 'any');
    await waitFor(() => received.length === 1, { timeoutMs: 5_000, what: 'delivery woken by NOTIFY' });
    expect(received.map((e) => e.data.body)).toEqual(['hello']);

    await eraser.erase('sharer');
    await waitFor(async () => (await keys.keysForReading([kid])).get(kid) === null, {
      timeoutMs: 5_000,
      what: 'the erasure heard on the shared connection',
    });
    expect(await listeningBackends()).toBe(before + 1);
    await stop();
  });

  it('is what createEventStore builds from a store and the key store it is given', async () => {
    const writer = newLog();
    await writer.append(`${uniqueCategory('warm-up')}-1`, [sent('writer', 'warm-up')], 'any');
    const before = await listeningBackends();
    const log = newServiceLog();
    const category = uniqueCategory('factory-listen');
    const { received, stop } = await subscribeFromHead(log, category);
    // The key store connects for the append; the subscription's waits since then found it listening.
    await log.append(`${category}-1`, [sent('factory', 'one')], 'any');
    await waitFor(() => received.length === 1, { what: 'the first delivery' });
    await writer.append(`${category}-2`, [sent('writer', 'two')], 'any');
    await waitFor(() => received.length === 2, { what: 'the second delivery' });
    expect(await listeningBackends()).toBe(before + 1);
    await stop();
  });

  it('leaves the log’s channel alone in a process that only appends (no wake-up per append there)', async () => {
    const onLogChannel = async () =>
      (
        await admin.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND query LIKE 'LISTEN%' AND query LIKE '%es_events%'`,
        )
      ).rows[0]?.n ?? 0;
    const before = await listeningBackends();
    const beforeOnLog = await onLogChannel();
    const log = newServiceLog();
    await log.append(`${uniqueCategory('append-only')}-1`, [sent('appender', 'hi')], 'any');
    expect(await listeningBackends()).toBe(before + 1);
    expect(await onLogChannel()).toBe(beforeOnLog);
  });
});

describe('pages read at the log’s tail carry their data keys', () => {
  const wrappedOf = async (userId: string) =>
    (
      await admin.query<{ wrapped: Buffer }>('SELECT wrapped FROM keys.user_data_keys WHERE user_id = $1', [
        userId,
      ])
    ).rows[0]?.wrapped;
  const kidOf = (event: { data: Record<string, unknown> }) => (event.data.body as { kid: string }).kid;

  it('carries each personal field’s key as the page’s snapshot has it (stored, erased), none on a catch-up page', async () => {
    const writer = newLog();
    const eraser = newStore();
    const raw = createPostgresEventStore({ connectionString: database.url });
    logs.push(raw);
    const category = uniqueCategory('carried');
    const from = await raw.headPosition();
    await writer.append(`${category}-1`, [sent('keeps', 'hello')], 'any');
    await writer.append(`${category}-2`, [sent('leaves', 'bye')], 'any');
    await writer.append(`${category}-3`, [newEvent('TestHappened', { body: 'not personal' })], 'any');
    await eraser.erase('leaves');

    const pages = keyedPages(raw, from, category);
    const page = await pages.next();
    await pages.stop();
    expect(page.events.map((e) => e.type)).toEqual(['MessageSent', 'MessageSent', 'TestHappened']);
    const [kept, left] = page.events.map(kidOf);
    expect([...page.dataKeys.keys()].sort()).toEqual([kept, left].sort());
    expect(page.dataKeys.get(kept!)).toEqual({ userId: 'keeps', wrapped: await wrappedOf('keeps') });
    expect(page.dataKeys.get(left!)).toEqual({ userId: 'leaves', wrapped: null });

    // One event per page: the first page is at the tail as far as the reader knows, the next ones (each
    // after a full page) are catch-up pages and carry nothing; the one after a partial read carries again.
    const smallPages = keyedPages(raw, from, category, 1);
    const first = await smallPages.next();
    const second = await smallPages.next();
    const third = await smallPages.next();
    expect([first, second, third].map((p) => p.events.length)).toEqual([1, 1, 1]);
    expect([first.dataKeys.size, second.dataKeys.size]).toEqual([1, 0]);
    const next = smallPages.next();
    // After the (empty) catch-up read that follows the full third page: the next page is at the tail.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await writer.append(`${category}-4`, [sent('keeps', 'later')], 'any');
    const fourth = await next;
    expect(fourth.dataKeys.get(kidOf(fourth.events[0]!))?.userId).toBe('keeps');
    await smallPages.stop();
  });

  it('opens what a page carried without a query of its own, and looks up only what it did not carry', async () => {
    const keys = newStore();
    const writing = await keys.keyForWriting('carried-writer');
    // A key no table holds: opened all the same, so no query was made (a query would call it unknown).
    const kid = randomUUID();
    const key = randomBytes(32);
    const found = await keys.keysForReading(
      [kid, writing.kid],
      new Map([
        [kid, { userId: 'nobody', wrapped: seal(master, key, `data-key:${kid}`) }],
        // Stored and cached, but the page's snapshot had it erased: what the page says holds.
        [writing.kid, { userId: 'carried-writer', wrapped: null }],
      ]),
    );
    expect(found.get(kid)?.equals(key)).toBe(true);
    expect(found.get(writing.kid)).toBeNull();
    // Not carried: looked up, as without a page.
    await expect(keys.keysForReading([randomUUID()], new Map())).rejects.toBeInstanceOf(UnknownDataKeyError);
  });

  it('trusts a carried key for its page only: a later read without the page asks the table again', async () => {
    const keys = newStore();
    const { kid, key } = await newStore().keyForWriting('vouched-for');
    const wrapped = await wrappedOf('vouched-for');
    const carried = new Map([[kid, { userId: 'vouched-for', wrapped: wrapped ?? null }]]);
    expect((await keys.keysForReading([kid], carried)).get(kid)?.equals(key)).toBe(true);
    // Destroyed behind the process's back (no notification): what the page vouched for is not cached as fresh.
    await admin.query(
      `WITH gone AS (DELETE FROM keys.user_data_keys WHERE user_id = 'vouched-for' RETURNING user_id, kid)
       INSERT INTO keys.erased_users (user_id, kid) SELECT user_id, kid FROM gone`,
    );
    expect((await keys.keysForReading([kid])).get(kid)).toBeNull();
  });

  it('forgets a writer whose tombstone a page carried, as the erasure’s notification would', async () => {
    const keys = newStore();
    const { kid } = await keys.keyForWriting('quietly-erased');
    // Erased without a notification reaching this process (its LISTEN was down, say).
    await admin.query(
      `WITH gone AS (DELETE FROM keys.user_data_keys WHERE user_id = 'quietly-erased' RETURNING user_id, kid)
       INSERT INTO keys.erased_users (user_id, kid) SELECT user_id, kid FROM gone`,
    );
    const carried = new Map([[kid, { userId: 'quietly-erased', wrapped: null }]]);
    expect((await keys.keysForReading([kid], carried)).get(kid)).toBeNull();
    await expect(keys.keyForWriting('quietly-erased')).rejects.toBeInstanceOf(ErasedUserError);
  });

  it('reads personal fields that are not sealed fields, or name no uuid, without failing the page', async () => {
    const raw = createPostgresEventStore({ connectionString: database.url });
    logs.push(raw);
    const category = uniqueCategory('odd-kids');
    const from = await raw.headPosition();
    const bodies = [
      'plain text',
      { enc: 'v1', kid: 'zz', ct: '' },
      { kid: 42 },
      ['x'],
      { enc: 'v1', kid: `${randomUUID()}' ` },
    ];
    for (const [i, body] of bodies.entries())
      await raw.append(`${category}-${i}`, [newEvent('MessageSent', { senderId: 'odd', body })], 'any');
    const pages = keyedPages(raw, from, category);
    const page = await pages.next();
    await pages.stop();
    expect(page.events.map((e) => e.data.body)).toEqual(bodies);
    expect(page.dataKeys.size).toBe(0);
  });

  it('hands a tail page’s keys to the key store when it decrypts a subscription', async () => {
    const keys = createPgDataKeyStore({ connectionString: database.url, master }); // closed with the reader
    const carried: (ReadonlyMap<string, StoredDataKey> | undefined)[] = [];
    const spy: DataKeyStore = {
      ...keys,
      keysForReading: (kids, withPage) => {
        carried.push(withPage);
        return keys.keysForReading(kids, withPage);
      },
    };
    const reader = new EncryptingEventStore(
      createPostgresEventStore({ connectionString: database.url }),
      spy,
    );
    logs.push(reader);
    const category = uniqueCategory('decrypt-carried');
    const { received, stop } = await subscribeFromHead(reader, category);
    const writer = newLog();
    await writer.append(`${category}-1`, [sent('new-writer', 'first words')], 'any');
    await waitFor(() => received.length === 1, { what: 'the first message' });
    await stop();
    expect(received[0]?.data.body).toBe('first words');
    const [stored] = await admin
      .query<{ kid: string }>("SELECT kid::text FROM keys.user_data_keys WHERE user_id = 'new-writer'")
      .then((r) => r.rows);
    expect(carried.at(-1)?.get(stored!.kid)?.userId).toBe('new-writer');
  });
});
