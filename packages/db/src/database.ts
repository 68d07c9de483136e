import { createHash } from 'node:crypto';
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

export type ReadModelDbOptions = {
  /**
   * Over one client: send every statement as a named (prepared) statement of its connection, named by
   * a hash of its text, so that the connection parses it once and, after PostgreSQL's first few custom
   * plans, runs it on a generic plan instead of planning it again. For a caller whose statement texts
   * come from a small fixed set (the projector's live batches: values travel as parameters); each
   * distinct text stays prepared on its connection for the connection's life.
   */
  preparedStatements?: boolean;
};

/** One checked-out client as a kysely pool: every query runs on it, inside its open transaction. */
const onClient = (client: pg.PoolClient, prepared: boolean): PostgresPool => {
  // kysely only calls `query(sql, parameters)` (no cursors are configured) and `release`; pg's result
  // type is wider than kysely's declared one, hence the cast.
  const connection = {
    query: prepared
      ? (text: string, parameters: readonly unknown[]) =>
          client.query({ name: statementName(text), text, values: [...parameters] })
      : (text: string, parameters: readonly unknown[]) => client.query(text, [...parameters]),
    release: () => {},
  } as unknown as PostgresPoolClient;
  return { connect: async () => connection, end: async () => {} };
};

/** A prepared statement's name: its text's hash (pg refuses one name for two texts on a connection). */
const statementName = (text: string): string => `rm_${createHash('sha1').update(text).digest('base64url')}`;

/**
 * A kysely handle on the read models in `schema`, over `pool` (destroying the handle ends the pool, so
 * let the pool's owner close it) or over one client, e.g. inside a consumer's batch transaction. Every
 * query names the schema, so after a rebuild's rename the same handle reads the swapped-in tables.
 */
export const createReadModelDb = (
  source: pg.Pool | pg.PoolClient,
  schema: string = READ_MODEL_SCHEMA,
  options: ReadModelDbOptions = {},
): ReadModelDb =>
  new Kysely<Database>({
    dialect: new PostgresDialect({
      pool:
        source instanceof pg.Pool ? onPool(source) : onClient(source, options.preparedStatements ?? false),
    }),
  }).withSchema(schema);

/** The pool, its clients checked out with an error listener in place (see `connectClient`). */
const onPool = (pool: pg.Pool): PostgresPool => ({
  connect: () => connectClient(pool),
  end: () => pool.end(),
});
