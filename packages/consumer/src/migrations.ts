import { type MigrationDb, migrateSchema } from '@chat/platform';
import { type Migration, sql } from 'kysely';
import type pg from 'pg';

/** Every consumer's checkpoint and quarantined events live in this schema, one row per consumer name. */
export const CONSUMERS_SCHEMA = 'consumers';

const migrations: Record<string, Migration> = {
  '2026_11_27_001_checkpoints_and_quarantine': {
    up: async (db: MigrationDb) => {
      // Positions are fixed-width hex: "C" collation makes text order log order under any locale.
      await sql`
        CREATE TABLE consumers.checkpoints (
          name text COLLATE "C" PRIMARY KEY,
          position text COLLATE "C" NOT NULL,
          updated_at timestamptz NOT NULL DEFAULT now()
        )`.execute(db);
      await sql`
        CREATE TABLE consumers.quarantine (
          consumer text COLLATE "C" NOT NULL,
          event_id text NOT NULL,
          position text COLLATE "C" NOT NULL,
          stream_id text NOT NULL,
          revision bigint NOT NULL,
          event_type text NOT NULL,
          error text NOT NULL,
          attempts integer NOT NULL,
          first_failed_at timestamptz NOT NULL,
          last_failed_at timestamptz NOT NULL,
          retry_requested_at timestamptz,
          PRIMARY KEY (consumer, event_id)
        )`.execute(db);
      // The relay used to create its own checkpoint table at start-up: carry its position over, so an
      // upgraded relay resumes where it stopped. The lock keeps a still-running old relay from moving
      // it between the copy and the drop.
      await sql`
        DO $$
        BEGIN
          IF to_regclass('relay.checkpoints') IS NOT NULL THEN
            LOCK TABLE relay.checkpoints IN ACCESS EXCLUSIVE MODE;
            INSERT INTO consumers.checkpoints (name, position, updated_at)
              SELECT name, position, updated_at FROM relay.checkpoints
              ON CONFLICT (name) DO NOTHING;
            DROP TABLE relay.checkpoints;
            DROP SCHEMA IF EXISTS relay;
          END IF;
        END $$`.execute(db);
    },
  },
};

/**
 * Creates or upgrades the `consumers` schema. The read-model and notification migrations run it first
 * (their old checkpoint tables are carried over into it); `pnpm migrate` runs it too.
 */
export const migrateConsumers = (db: MigrationDb | pg.Pool): Promise<void> =>
  migrateSchema(db, CONSUMERS_SCHEMA, migrations);

/**
 * A migration step for a package whose consumer kept its checkpoint in a table of its own schema:
 * moves the rows into `consumers.checkpoints` and drops the old table, under a lock so that an old
 * instance still running cannot move the checkpoint between the copy and the drop.
 */
export const carryOverCheckpoints = async (db: MigrationDb, schema: string): Promise<void> => {
  const old = sql.id(schema, 'checkpoints');
  await sql`LOCK TABLE ${old} IN ACCESS EXCLUSIVE MODE`.execute(db);
  await sql`
    INSERT INTO consumers.checkpoints (name, position, updated_at)
    SELECT name, position, updated_at FROM ${old}
    ON CONFLICT (name) DO NOTHING`.execute(db);
  await sql`DROP TABLE ${old}`.execute(db);
};
