import { randomBytes } from 'node:crypto';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgDataKeyStore, type DataKeyStore, ErasedUserError, open, seal } from '../src/index.js';

// The tables of `migrateDataKeys` (@chat/db, which this package must not depend on), as they are.
const KEY_TABLES = `
  CREATE SCHEMA keys;
  CREATE TABLE keys.user_data_keys (
    user_id text COLLATE "C" PRIMARY KEY, kid uuid NOT NULL UNIQUE, wrapped bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE keys.erased_users (
    user_id text COLLATE "C" PRIMARY KEY, kid uuid UNIQUE, erased_at timestamptz NOT NULL DEFAULT now());`;

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

beforeAll(async () => {
  database = await createTestDatabase('datakeys');
  admin = new pg.Pool({ connectionString: database.url, max: 1 });
  await admin.query(KEY_TABLES);
});

afterAll(async () => {
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
