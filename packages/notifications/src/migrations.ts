import { carryOverCheckpoints, migrateConsumers } from '@chat/consumer';
import { type MigrationDb, migrateSchema } from '@chat/platform';
import { type Migration, sql } from 'kysely';
import type pg from 'pg';

/** The notifier's tables live in this schema. */
export const NOTIFIER_SCHEMA = 'notifier';

// The first cut ran these idempotent steps on every start; they are now the first frozen migration
// (an existing database runs them once more, changing nothing).
const FIRST_STEPS: readonly string[] = [
  `CREATE SCHEMA IF NOT EXISTS notifier`,
  `CREATE TABLE IF NOT EXISTS notifier.checkpoints (
     name text PRIMARY KEY,
     position text NOT NULL,
     updated_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS notifier.conversations (
     conversation_id text PRIMARY KEY,
     kind text NOT NULL
   )`,
  `CREATE TABLE IF NOT EXISTS notifier.members (
     conversation_id text NOT NULL,
     user_id text NOT NULL,
     PRIMARY KEY (conversation_id, user_id)
   )`,
  `CREATE TABLE IF NOT EXISTS notifier.mutes (
     conversation_id text NOT NULL,
     user_id text NOT NULL,
     until timestamptz NOT NULL,
     PRIMARY KEY (conversation_id, user_id)
   )`,
  `CREATE TABLE IF NOT EXISTS notifier.read_results (
     event_id text PRIMARY KEY,
     user_id text NOT NULL,
     updated integer NOT NULL,
     created_at timestamptz NOT NULL DEFAULT now()
   )`,
  `CREATE TABLE IF NOT EXISTS notifier.outbox (
     delivery_id uuid PRIMARY KEY,
     recipient_id text NOT NULL,
     payload text NOT NULL,
     status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
     attempts integer NOT NULL DEFAULT 0,
     next_attempt_at timestamptz NOT NULL DEFAULT now(),
     lease_token uuid,
     last_error text,
     created_at timestamptz NOT NULL DEFAULT now(),
     finished_at timestamptz
   )`,
  `CREATE INDEX IF NOT EXISTS outbox_due ON notifier.outbox (next_attempt_at) WHERE status = 'pending'`,
  // What a message's records share (preview, actor, time) lives in one row per message: rows per
  // recipient are 2.5-4x cheaper to insert and an edit updates one row. A database created by the
  // first cut (one wide row per record) is upgraded by dropping that table and replaying the log —
  // the notifier's tables are a projection; the outbox stays and is not enqueued twice.
  `DO $$
   BEGIN
     IF EXISTS (SELECT 1 FROM information_schema.columns
                 WHERE table_schema = 'notifier' AND table_name = 'notifications' AND column_name = 'preview') THEN
       DROP TABLE notifier.notifications;
       TRUNCATE notifier.checkpoints, notifier.conversations, notifier.members, notifier.mutes, notifier.read_results;
     END IF;
   END $$`,
  `CREATE TABLE IF NOT EXISTS notifier.messages (
     message_ref bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     conversation_id text NOT NULL,
     message_id text NOT NULL,
     actor_id text NOT NULL,
     preview text NOT NULL,
     created_at timestamptz NOT NULL,
     position text NOT NULL,
     UNIQUE (conversation_id, message_id)
   )`,
  `CREATE TABLE IF NOT EXISTS notifier.notifications (
     notification_id uuid PRIMARY KEY,
     recipient_id text NOT NULL,
     kind text NOT NULL CHECK (kind IN ('message', 'mention')),
     message_ref bigint NOT NULL,
     created_at timestamptz NOT NULL,
     read_at timestamptz
   )`,
  `CREATE INDEX IF NOT EXISTS notifications_by_recipient
     ON notifier.notifications (recipient_id, created_at DESC, notification_id DESC)`,
  `CREATE INDEX IF NOT EXISTS notifications_unread_by_recipient
     ON notifier.notifications (recipient_id, created_at DESC, notification_id DESC) WHERE read_at IS NULL`,
];

export const notifierMigrations: Record<string, Migration> = {
  '2026_11_27_001_notifier_tables': {
    up: async (db: MigrationDb) => {
      for (const step of FIRST_STEPS) await sql.raw(step).execute(db);
    },
  },
  // The notifier's checkpoint moved to the one table of every consumer (`consumers.checkpoints`, row
  // `notifier`): an upgraded notifier resumes where it stopped.
  '2026_11_27_002_checkpoint_to_consumers': {
    up: (db: MigrationDb) => carryOverCheckpoints(db, NOTIFIER_SCHEMA),
  },
  // Dead letters are listed and redriven by the time they died (`chatctl webhooks`); they are few
  // among a week of delivered rows.
  '2026_11_27_003_outbox_dead_letters': {
    up: async (db: MigrationDb) => {
      await sql`CREATE INDEX IF NOT EXISTS outbox_dead ON notifier.outbox (finished_at) WHERE status = 'dead'`.execute(
        db,
      );
    },
  },
  // v1.1: notification levels, and the kinds of the contract. A record carries what it shows (the
  // message's preview and actor) again: with levels, most messages make no record or one, for which a
  // shared row per message was a second insert; an edit updates the records of its message, which
  // are as many as the message made.
  '2026_11_28_004_levels_and_self_contained_records': {
    up: async (db: MigrationDb) => {
      const steps = [
        `CREATE TABLE notifier.levels (
           conversation_id text NOT NULL,
           user_id text NOT NULL,
           level text NOT NULL CHECK (level IN ('all', 'mentions', 'none')),
           PRIMARY KEY (conversation_id, user_id)
         )`,
        `ALTER TABLE notifier.notifications
           ADD COLUMN conversation_id text, ADD COLUMN message_id text,
           ADD COLUMN actor_id text, ADD COLUMN preview text`,
        `UPDATE notifier.notifications n
            SET conversation_id = m.conversation_id, message_id = m.message_id,
                actor_id = m.actor_id, preview = m.preview
           FROM notifier.messages m WHERE m.message_ref = n.message_ref`,
        `ALTER TABLE notifier.notifications
           ALTER COLUMN conversation_id SET NOT NULL, ALTER COLUMN message_id SET NOT NULL,
           ALTER COLUMN actor_id SET NOT NULL, ALTER COLUMN preview SET NOT NULL,
           DROP COLUMN message_ref,
           DROP CONSTRAINT notifications_kind_check,
           ADD CONSTRAINT notifications_kind_check
             CHECK (kind IN ('message', 'mention', 'reply', 'reaction', 'thread'))`,
        `DROP TABLE notifier.messages`,
        `CREATE INDEX notifications_by_message ON notifier.notifications (conversation_id, message_id)`,
      ];
      for (const step of steps) await sql.raw(step).execute(db);
    },
  },
  // Blocks (issue 16): a user who blocked another gets no record from what that user does. Folded from
  // UserBlocked / UserUnblocked on the blocker's stream, in log order, so a replay decides alike.
  '2026_11_29_005_blocks': {
    up: async (db: MigrationDb) => {
      await sql`CREATE TABLE notifier.blocks (
        user_id text NOT NULL,
        blocked_user_id text NOT NULL,
        PRIMARY KEY (user_id, blocked_user_id)
      )`.execute(db);
    },
  },
  // Erasure (README "Erasure"): a record whose text was written by an erased user keeps no preview.
  '2026_11_29_006_erasable_previews': {
    up: async (db: MigrationDb) => {
      await sql`ALTER TABLE notifier.notifications ALTER COLUMN preview DROP NOT NULL`.execute(db);
    },
  },
};

/**
 * Creates or upgrades the notifier's tables in schema `notifier`, after the `consumers` schema that
 * holds its checkpoint. Idempotent; concurrent callers are serialised by kysely's migration lock.
 */
export const migrateNotifier = async (db: MigrationDb | pg.Pool): Promise<void> => {
  await migrateConsumers(db);
  await migrateSchema(db, NOTIFIER_SCHEMA, notifierMigrations);
};
