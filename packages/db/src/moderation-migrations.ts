import type { MigrationDb as AnyDb } from '@chat/platform';
import { type Migration, sql } from 'kysely';

/**
 * Moderation and blocking (issue 16): kept in a file of their own and spread into
 * `readModelMigrations`, frozen like every migration. Parameterised by schema for a rebuild's shadow.
 */
export const moderationMigrations = (schema: string): Record<string, Migration> => {
  const t = (table: string) => sql.id(schema, table);
  return {
    // `role`: 'admin' for a member the owner promoted, null otherwise (the creator is the owner, read
    // from conversations.created_by). `deleted_by`: who deleted a message (its sender or a moderator);
    // earlier deletes were all by their sender, so existing tombstones take it from sender_id.
    // Bans, reports and blocks start empty: no event before this version made any.
    '2026_11_29_020_moderation': {
      up: async (db: AnyDb) => {
        await sql`ALTER TABLE ${t('members')} ADD COLUMN role text`.execute(db);
        await sql`ALTER TABLE ${t('messages')} ADD COLUMN deleted_by text`.execute(db);
        await sql`UPDATE ${t('messages')} SET deleted_by = sender_id WHERE deleted`.execute(db);
        await sql`
          CREATE TABLE ${t('conversation_bans')} (
            conversation_id text NOT NULL,
            user_id text NOT NULL,
            banned_by text NOT NULL,
            banned_at timestamptz NOT NULL,
            seq integer NOT NULL,
            PRIMARY KEY (conversation_id, user_id)
          )`.execute(db);
        await sql`
          CREATE TABLE ${t('reports')} (
            report_id text COLLATE "C" PRIMARY KEY,
            conversation_id text NOT NULL,
            message_id text NOT NULL,
            message_sender_id text NOT NULL,
            reporter_id text NOT NULL,
            reason text NOT NULL,
            reported_at timestamptz NOT NULL,
            status text NOT NULL,
            resolved_by text,
            resolved_at timestamptz,
            action text,
            note text
          )`.execute(db);
        // The queue pages newest first, per status.
        await sql`CREATE INDEX reports_queue_idx ON ${t('reports')} (status, reported_at DESC, report_id DESC)`.execute(
          db,
        );
        await sql`
          CREATE TABLE ${t('user_blocks')} (
            user_id text NOT NULL,
            blocked_user_id text NOT NULL,
            blocked_at timestamptz NOT NULL,
            PRIMARY KEY (user_id, blocked_user_id)
          )`.execute(db);
        // Who blocks a given user (presence answers "unknown" across a block, either way).
        await sql`CREATE INDEX user_blocks_blocked_idx ON ${t('user_blocks')} (blocked_user_id, user_id)`.execute(
          db,
        );
      },
    },
  };
};
