import { connectClient } from '@chat/platform';
import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient } from 'kysely';
import pg from 'pg';
import type { ConversationsTable } from './tables/conversations.table.js';
import type { MembersTable } from './tables/members.table.js';
import type { MessageReactionsTable, MessagesTable } from './tables/messages.table.js';
import type { ConversationBansTable, ReportsTable, UserBlocksTable } from './tables/moderation.table.js';

/** Read models live in this Postgres schema; a rebuild projects into a shadow schema and swaps it in. */
export const READ_MODEL_SCHEMA = 'read_models';
/** The projection's consumer name: its row in `consumers.checkpoints` and its quarantine key. */
export const READ_MODEL_CHECKPOINT = 'read_models';

export interface Database {
  conversations: ConversationsTable;
  members: MembersTable;
  messages: MessagesTable;
  message_reactions: MessageReactionsTable;
  conversation_bans: ConversationBansTable;
  reports: ReportsTable;
  user_blocks: UserBlocksTable;
}

export type ReadModelDb = Kysely<Database>;

/** One checked-out client as a kysely pool: every query runs on it, inside its open transaction. */
const onClient = (client: pg.PoolClient): PostgresPool => {
  // kysely only calls `query(sql, parameters)` (no cursors are configured) and `release`; pg's result
  // type is wider than kysely's declared one, hence the cast.
  const connection = {
    query: (sql: string, parameters: readonly unknown[]) => client.query(sql, [...parameters]),
    release: () => {},
  } as unknown as PostgresPoolClient;
  return { connect: async () => connection, end: async () => {} };
};

/**
 * A kysely handle on the read models in `schema`, over `pool` (destroying the handle ends the pool, so
 * let the pool's owner close it) or over one client, e.g. inside a consumer's batch transaction. Every
 * query names the schema, so after a rebuild's rename the same handle reads the swapped-in tables.
 */
export const createReadModelDb = (
  source: pg.Pool | pg.PoolClient,
  schema: string = READ_MODEL_SCHEMA,
): ReadModelDb =>
  new Kysely<Database>({
    dialect: new PostgresDialect({ pool: source instanceof pg.Pool ? onPool(source) : onClient(source) }),
  }).withSchema(schema);

/** The pool, its clients checked out with an error listener in place (see `connectClient`). */
const onPool = (pool: pg.Pool): PostgresPool => ({
  connect: () => connectClient(pool),
  end: () => pool.end(),
});
