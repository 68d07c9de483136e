import { type MigrationDb as AnyDb, migrateSchema } from '@chat/platform';
import { type Migration, sql } from 'kysely';
import type pg from 'pg';

/** The schema of the users' data keys (crypto-shredding, README "Erasure"): outside the event log. */
export const DATA_KEY_SCHEMA = 'keys';

// Frozen in time, like every migration (see @chat/platform's migrateSchema).
const dataKeyMigrations: Record<string, Migration> = {
  // One key per user who wrote personal text, wrapped (AES-256-GCM) under DATA_KEY_MASTER; erasing the
  // user deletes the row and leaves the tombstone, which names the destroyed key (null when the user
  // never had one) and refuses new personal text by that user.
  '2026_11_29_001_user_data_keys': {
    up: async (db: AnyDb) => {
      await sql`CREATE SCHEMA IF NOT EXISTS keys`.execute(db);
      await sql`
        CREATE TABLE keys.user_data_keys (
          user_id text COLLATE "C" PRIMARY KEY,
          kid uuid NOT NULL UNIQUE,
          wrapped bytea NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now()
        )`.execute(db);
      await sql`
        CREATE TABLE keys.erased_users (
          user_id text COLLATE "C" PRIMARY KEY,
          kid uuid UNIQUE,
          erased_at timestamptz NOT NULL DEFAULT now()
        )`.execute(db);
    },
  },
};

/** Creates or upgrades schema `keys`. Idempotent; concurrent callers are serialised by kysely's lock. */
export const migrateDataKeys = (db: AnyDb | pg.Pool): Promise<void> =>
  migrateSchema(db, DATA_KEY_SCHEMA, dataKeyMigrations);
