import { Kysely, PostgresDialect } from 'kysely';
import type pg from 'pg';
import type { CheckpointsTable } from './tables/checkpoints.table.js';
import type { ConversationsTable } from './tables/conversations.table.js';
import type { MembersTable } from './tables/members.table.js';
import type { MessagesTable } from './tables/messages.table.js';

/** Read models live in this Postgres schema; a rebuild projects into a shadow schema and swaps it in. */
export const READ_MODEL_SCHEMA = 'read_models';
/** The projection's row in `checkpoints`. */
export const READ_MODEL_CHECKPOINT = 'read_models';

export interface Database {
  conversations: ConversationsTable;
  members: MembersTable;
  messages: MessagesTable;
  checkpoints: CheckpointsTable;
}

export type ReadModelDb = Kysely<Database>;

/**
 * A kysely handle on the read models in `schema`. It shares `pool` (destroying it ends the pool, so
 * let the pool's owner close it). Every query names the schema, so after a rebuild's rename the same
 * handle reads the swapped-in tables.
 */
export const createReadModelDb = (pool: pg.Pool, schema: string = READ_MODEL_SCHEMA): ReadModelDb =>
  new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }).withSchema(schema);
