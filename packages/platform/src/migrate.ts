import { Kysely, type Migration, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';

// Migrations are frozen in time: they take an untyped handle and spell out their DDL, so later changes
// to a package's table interfaces never change what an old migration did.
// biome-ignore lint/suspicious/noExplicitAny: migrations must not depend on today's table types
export type MigrationDb = Kysely<any>;

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/**
 * Runs a package's frozen kysely migrations, recording them in `schema` (each schema keeps its own
 * history, so a rebuild's shadow schema is migrated like the live one). Idempotent; concurrent callers
 * are serialised by kysely's migration lock.
 */
export const migrateSchema = async (
  db: MigrationDb | pg.Pool,
  schema: string,
  migrations: Record<string, Migration>,
): Promise<void> => {
  const handle: MigrationDb =
    db instanceof pg.Pool ? new Kysely({ dialect: new PostgresDialect({ pool: db }) }) : db;
  const migrator = new Migrator({
    db: handle,
    migrationTableSchema: schema,
    provider: { getMigrations: async () => migrations },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new MigrationError(`migration ${failed ?? ''} failed in schema ${schema}`, { cause: error });
  }
};
