/**
 * Event store benchmark (pnpm bench:store): single-event appends/s from 16 concurrent writers (group
 * commit), 100-event batch appends in events/s, and readAll / catch-up subscription events/s over at
 * least 200,000 events. Runs against a fresh database on the Postgres of DATABASE_URL (default local),
 * dropped afterwards. Bounded: each phase stops on a deadline.
 *
 * `BENCH_ENCRYPT=1`: the same through the crypto-shredding decorator (README "Erasure"), message bodies
 * encrypted with 50 users' data keys in `keys.user_data_keys`; the read phases then read events that
 * were all appended through it (no plaintext seed), so every event read is decrypted.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import {
  createPgDataKeyStore,
  createPostgresEventStore,
  EncryptingEventStore,
  type EventStore,
  migrateEventStore,
  type PostgresEventStore,
} from '../src/index.js';
import { messageSent, readAllPages, singleAppends } from './phases.js';

const PHASE_SECONDS = Number(process.env.BENCH_PHASE_SECONDS ?? 10);
const WRITERS = 16;
const BATCH_WRITERS = 4;
const BATCH_SIZE = 100;
const READ_TARGET = 200_000;
const ENCRYPT = process.env.BENCH_ENCRYPT === '1';

const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/chat';
const withDatabase = (url: string, database: string) => {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
};

const admin = async (sql: string) => {
  const client = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
};

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);
const fmt = (n: number) => n.toLocaleString('en-US');

const batchAppends = async (
  store: EventStore,
  tag: string,
  until: (events: number) => boolean,
): Promise<{ events: number; ms: number }> => {
  const started = performance.now();
  let events = 0;
  await Promise.all(
    Array.from({ length: BATCH_WRITERS }, async (_, w) => {
      for (let i = 0; !until(events); i++) {
        const stream = `conversation-${tag}${w}-${i}`;
        await store.append(
          stream,
          Array.from({ length: BATCH_SIZE }, (_, k) => messageSent(stream, k)),
          'no_stream',
        );
        events += BATCH_SIZE;
      }
    }),
  );
  return { events, ms: performance.now() - started };
};

const seed = async (url: string, count: number) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      `INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
       SELECT 'conversation-seed-' || (n / 100), n % 100, gen_random_uuid(), 'MessageSent', $2::jsonb, $3::jsonb
         FROM generate_series(0, $1::int - 1) AS n`,
      [count, JSON.stringify(messageSent('seed', 0).data), JSON.stringify(messageSent('seed', 0).metadata)],
    );
  } finally {
    await client.end();
  }
};

const main = async () => {
  const database = `chat_bench_store_${randomBytes(4).toString('hex')}`;
  await admin(`CREATE DATABASE "${database}"`);
  const url = withDatabase(serverUrl, database);
  let store: EventStore | undefined;
  try {
    await migrateEventStore(url);
    const adapter: PostgresEventStore = createPostgresEventStore({
      connectionString: url,
      maxConnections: 8,
      groupCommit: { maxConcurrentFlushes: Number(process.env.BENCH_FLUSHES ?? 2) },
    });
    store = adapter;
    if (ENCRYPT) {
      // @chat/db owns the migration; a path, not a dependency (it depends on this package).
      const dataKeys = new URL('../../db/src/data-keys.ts', import.meta.url).href;
      const { migrateDataKeys } = (await import(dataKeys)) as {
        migrateDataKeys: (u: pg.Pool) => Promise<void>;
      };
      const pool = new pg.Pool({ connectionString: url, max: 1 });
      await migrateDataKeys(pool);
      await pool.end();
      store = new EncryptingEventStore(
        adapter,
        createPgDataKeyStore({ connectionString: url, master: randomBytes(32) }),
      );
    }
    console.log(
      `event store benchmark on ${database} (${PHASE_SECONDS} s phases${ENCRYPT ? ', bodies encrypted' : ''})`,
    );

    const single = await singleAppends(store, PHASE_SECONDS, WRITERS);
    console.log(
      `single-event appends, ${WRITERS} concurrent writers: ${fmt(rate(single.appends, single.ms))} appends/s (${fmt(single.appends)} in ${(single.ms / 1000).toFixed(1)} s)`,
    );

    const deadline = Date.now() + PHASE_SECONDS * 1000;
    const batch = await batchAppends(store, 'b', () => Date.now() > deadline);
    console.log(
      `${BATCH_SIZE}-event batch appends, ${BATCH_WRITERS} writers: ${fmt(rate(batch.events, batch.ms))} events/s (${fmt(batch.events)} in ${(batch.ms / 1000).toFixed(1)} s)`,
    );

    // Seed the rest of the ≥ 200,000 events for the read phases in one statement: the seeding is not
    // what is measured, and it must not eat the time budget on a slow disk.
    const missing = READ_TARGET - (single.appends + batch.events);
    if (missing > 0 && !ENCRYPT) await seed(url, missing);
    else if (missing > 0) await batchAppends(store, 's', (events) => events >= missing);

    const { events: read, ms: readMs } = await readAllPages(store);
    console.log(`readAll (pages of 1,000): ${fmt(rate(read, readMs))} events/s (${fmt(read)} events)`);

    const controller = new AbortController();
    let caughtUp = 0;
    const subStarted = performance.now();
    for await (const events of store.subscribeToAll({ batchSize: 1_000, signal: controller.signal })) {
      caughtUp += events.length;
      if (caughtUp >= read) controller.abort();
    }
    const subMs = performance.now() - subStarted;
    console.log(`subscribeToAll catch-up (batches of 1,000): ${fmt(rate(caughtUp, subMs))} events/s`);
  } finally {
    await store?.close();
    await admin(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`);
  }
};

await main();
