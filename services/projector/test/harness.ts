import { createReadModelDb, migrateReadModels, type ReadModelDb, readCheckpoint } from '@chat/db';
import {
  createPostgresEventStore,
  type EventStore,
  migrateEventStore,
  type RecordedEvent,
} from '@chat/eventstore';
import { createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import pino from 'pino';

export const silentLogger = pino({ level: 'silent' });

export type Harness = {
  database: TestDatabase;
  pool: pg.Pool;
  store: EventStore;
  db: ReadModelDb;
  close: () => Promise<void>;
};

/** A fresh database with the event store and the read models migrated. */
export const createHarness = async (label: string): Promise<Harness> => {
  const database = await createTestDatabase(label);
  const pool = new pg.Pool({ connectionString: database.url, max: 12 });
  await migrateEventStore(pool);
  await migrateReadModels(pool);
  const store = createPostgresEventStore({
    connectionString: database.url,
    logger: silentLogger,
    pollIntervalMs: 50,
  });
  const db = createReadModelDb(pool);
  return {
    database,
    pool,
    store,
    db,
    close: async () => {
      await store.close();
      await pool.end();
      await database.drop();
    },
  };
};

export const readWholeLog = async (store: EventStore): Promise<RecordedEvent[]> => {
  const out: RecordedEvent[] = [];
  for (;;) {
    const page = await store.readAll({ fromPosition: out.at(-1)?.position, maxCount: 5000 });
    out.push(...page);
    if (page.length < 5000) return out;
  }
};

export const waitForCheckpoint = (db: ReadModelDb, position: string, timeoutMs = 60_000) =>
  waitFor(async () => (await readCheckpoint(db)) >= position, { timeoutMs, what: `checkpoint ${position}` });

/** Every read-model row, in a stable order, for comparing two schemas. */
export const dumpSchema = async (pool: pg.Pool, schema: string) => {
  const q = async (table: string, order: string) =>
    (await pool.query(`SELECT * FROM "${schema}".${table} ORDER BY ${order}`)).rows;
  return {
    conversations: await q('conversations', 'conversation_id'),
    members: await q('members', 'conversation_id, user_id'),
    messages: await q('messages', 'conversation_id, seq'),
  };
};
