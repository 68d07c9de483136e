import { carryOverCheckpoints, migrateConsumers } from '@chat/consumer';
import { type MigrationDb as AnyDb, migrateSchema } from '@chat/platform';
import { type Migration, sql } from 'kysely';
import type pg from 'pg';
import { migrateDataKeys } from './data-keys.js';
import { READ_MODEL_SCHEMA } from './database.js';
import { moderationMigrations } from './moderation-migrations.js';

// Migrations are frozen in time (see @chat/platform's migrateSchema). They are parameterised by schema
// so that a rebuild can create the same tables in a shadow schema.

export const readModelMigrations = (schema: string): Record<string, Migration> => {
  const t = (table: string) => sql.id(schema, table);
  return {
    '2026_11_22_001_read_models': {
      up: async (db: AnyDb) => {
        await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
        await sql`
          CREATE TABLE ${t('conversations')} (
            conversation_id text COLLATE "C" PRIMARY KEY,
            kind text NOT NULL,
            title text,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL,
            last_seq integer NOT NULL,
            last_activity_at timestamptz NOT NULL,
            message_count integer NOT NULL DEFAULT 0,
            last_message_id text,
            last_message_sender text,
            last_message_preview text,
            last_message_sent_at timestamptz,
            last_message_seq integer,
            last_message_deleted boolean
          )`.execute(db);
        await sql`
          CREATE TABLE ${t('members')} (
            conversation_id text NOT NULL,
            user_id text NOT NULL,
            active boolean NOT NULL,
            joined_seq integer NOT NULL,
            ordinal integer NOT NULL DEFAULT 0,
            read_seq integer NOT NULL,
            read_msg_index integer NOT NULL DEFAULT 0,
            muted_until timestamptz,
            PRIMARY KEY (conversation_id, user_id)
          )`.execute(db);
        await sql`CREATE INDEX members_user_idx ON ${t('members')} (user_id, conversation_id) WHERE active`.execute(
          db,
        );
        await sql`
          CREATE TABLE ${t('messages')} (
            conversation_id text NOT NULL,
            seq integer NOT NULL,
            message_id text NOT NULL,
            msg_index integer NOT NULL,
            sender_id text NOT NULL,
            body text,
            reply_to text,
            sent_at timestamptz NOT NULL,
            edited_at timestamptz,
            deleted boolean NOT NULL DEFAULT false,
            PRIMARY KEY (conversation_id, seq),
            UNIQUE (conversation_id, message_id)
          )`.execute(db);
        // Unread counts subtract deleted messages above a watermark; deletes are rare, so this stays tiny.
        await sql`CREATE INDEX messages_deleted_idx ON ${t('messages')} (conversation_id, seq) WHERE deleted`.execute(
          db,
        );
        await sql`
          CREATE TABLE ${t('checkpoints')} (
            name text PRIMARY KEY,
            position text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
          )`.execute(db);
      },
    },
    // The projection's checkpoint moved to the one table of every consumer (`consumers.checkpoints`,
    // row `read_models`): an upgraded projector resumes where it stopped.
    '2026_11_27_002_checkpoint_to_consumers': {
      up: (db: AnyDb) => carryOverCheckpoints(db, schema),
    },
    // The level a member set (NotificationLevelSet, v1.1); null is the default by the conversation's
    // kind. Events before v1.1 set none, so existing rows need no replay.
    '2026_11_28_003_notification_levels': {
      up: async (db: AnyDb) => {
        await sql`ALTER TABLE ${t('members')} ADD COLUMN notification_level text`.execute(db);
      },
    },
    // Reactions (v1.1): one row per (message, reaction, user) that has it; `seq` of the event that
    // added it orders users and reactions (first use).
    '2026_11_28_004_message_reactions': {
      up: async (db: AnyDb) => {
        await sql`
          CREATE TABLE ${t('message_reactions')} (
            conversation_id text NOT NULL,
            message_id text NOT NULL,
            reaction text NOT NULL,
            user_id text NOT NULL,
            seq integer NOT NULL,
            PRIMARY KEY (conversation_id, message_id, reaction, user_id)
          )`.execute(db);
      },
    },
    ...moderationMigrations(schema),
    // Threads (issue 16): a reply names its root; the root keeps its thread's counters (the projector
    // updates them with each reply, so reading a root costs nothing extra). The partial index pages a
    // thread and leaves main-timeline messages out of it.
    '2026_11_29_021_threads': {
      up: async (db: AnyDb) => {
        await sql`
          ALTER TABLE ${t('messages')}
            ADD COLUMN thread_root_id text,
            ADD COLUMN reply_count integer NOT NULL DEFAULT 0,
            ADD COLUMN last_reply_at timestamptz,
            ADD COLUMN thread_participants text[] NOT NULL DEFAULT '{}'`.execute(db);
        await sql`
          CREATE INDEX messages_thread_idx ON ${t('messages')} (conversation_id, thread_root_id, seq)
           WHERE thread_root_id IS NOT NULL`.execute(db);
      },
    },
    // Search (issue 16): the body's tokens under the `simple` configuration (no stemming or stop words,
    // so every language matches by its tokens). A generated column follows every write of `body` — a
    // send, an edit, a delete or an erasure (body null: nothing matches) — at O(1) per message; the GIN
    // index answers `@@`.
    '2026_11_29_022_message_search': {
      up: async (db: AnyDb) => {
        await sql`
          ALTER TABLE ${t('messages')}
            ADD COLUMN search_vector tsvector
              GENERATED ALWAYS AS (to_tsvector('simple', coalesce(body, ''))) STORED`.execute(db);
        await sql`CREATE INDEX messages_search_idx ON ${t('messages')} USING gin (search_vector)`.execute(db);
      },
    },
  };
};

/** An index of a table set aside for a bulk load (a rebuild's replay), and the statement creating it again. */
export type DeferredIndex = {
  name: string;
  /** The access method (`btree`, `gin`, …). */
  method: string;
  /** `ALTER TABLE … ADD CONSTRAINT …` for an index backing a constraint, else `CREATE INDEX …`. */
  create: string;
};

/**
 * A replay into a shadow schema (a rebuild) writes `messages` row by row; maintaining its indexes with
 * every row (two btrees with a thousand insertion points each, the GIN over the `tsvector`) cost about
 * two thirds of Postgres's time per message, while building them once at the end costs a tenth of that.
 * This drops every index of `schema.table` — constraints' indexes with their constraint — and returns
 * what `createIndexes` needs to create them again exactly as they were, taken from the catalog (so an
 * index a later migration adds is set aside and restored too, never forgotten).
 */
export const dropIndexes = async (pool: pg.Pool, schema: string, table: string): Promise<DeferredIndex[]> => {
  const relation = `${quoted(schema)}.${quoted(table)}`;
  const { rows } = await pool.query<{ name: string; method: string; def: string; constraint: string | null }>(
    `SELECT c.relname AS name, am.amname AS method, con.conname AS constraint,
            coalesce(pg_get_constraintdef(con.oid), pg_get_indexdef(i.indexrelid)) AS def
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid
       JOIN pg_am am ON am.oid = c.relam
       LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
      WHERE i.indrelid = $1::regclass
      ORDER BY c.oid`,
    [relation],
  );
  const indexes = rows.map((r) => ({
    name: r.name,
    method: r.method,
    create:
      r.constraint === null
        ? r.def
        : `ALTER TABLE ${relation} ADD CONSTRAINT ${quoted(r.constraint)} ${r.def}`,
  }));
  for (const r of rows) {
    await pool.query(
      r.constraint === null
        ? `DROP INDEX ${quoted(schema)}.${quoted(r.name)}`
        : `ALTER TABLE ${relation} DROP CONSTRAINT ${quoted(r.constraint)}`,
    );
  }
  return indexes;
};

/** Creates indexes `dropIndexes` set aside, in the order they were created first. */
export const createIndexes = async (pool: pg.Pool, indexes: readonly DeferredIndex[]): Promise<void> => {
  for (const index of indexes) await pool.query(index.create);
};
const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Makes every table of `schema` unlogged (`false`) or logged again (`true`). A rebuild's shadow schema is
 * written unlogged: nothing reads it before the swap, and a crash that empties it only makes the next
 * rebuild start over, which it does anyway (it drops any shadow schema it finds). Each row's WAL record
 * was about a quarter of Postgres's time per replayed message; made logged again, the table is copied
 * into the WAL once, page by page. (The read models have no foreign keys;
 * with them, referencing tables would have to go unlogged first and referenced ones logged first.)
 */
export const setSchemaLogged = async (pool: pg.Pool, schema: string, logged: boolean): Promise<void> => {
  const { rows } = await pool.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relpersistence = $2 ORDER BY c.oid`,
    [schema, logged ? 'u' : 'p'],
  );
  for (const { name } of rows) {
    await pool.query(`ALTER TABLE ${quoted(schema)}.${quoted(name)} SET ${logged ? 'LOGGED' : 'UNLOGGED'}`);
  }
};

/**
 * Creates or upgrades the read-model tables in `schema` (default `read_models`), after the `consumers`
 * schema that holds their checkpoint; for the live schema also the users' data keys (`keys`), which
 * every service that writes or reads text needs (a shadow schema of a rebuild does not). Idempotent; concurrent callers are serialised by kysely's
 * migration lock.
 */
export const migrateReadModels = async (
  db: AnyDb | pg.Pool,
  schema: string = READ_MODEL_SCHEMA,
): Promise<void> => {
  await migrateConsumers(db);
  if (schema === READ_MODEL_SCHEMA) await migrateDataKeys(db);
  await migrateSchema(db, schema, readModelMigrations(schema));
};
