import type { ColumnType, Insertable, Selectable } from 'kysely';

/** Times are written as ISO strings and read back as Dates. */
export type Timestamp = ColumnType<Date, Date | string, Date | string>;
export type NullableTimestamp = ColumnType<Date | null, Date | string | null, Date | string | null>;

/**
 * A row of `Table` as code holds it to write it back (the projection's fold): timestamps as ISO strings,
 * every other column as selected. Derived, so a column is declared once, in the table's interface.
 */
export type RowValues<Table> = {
  [K in keyof Table]: Table[K] extends Timestamp
    ? string
    : Table[K] extends NullableTimestamp
      ? string | null
      : Selectable<Table>[K & keyof Selectable<Table>];
};

/**
 * One row per conversation. `message_count` counts every `MessageSent` ever (deleted ones included): with
 * `msg_index` on messages and `read_msg_index` on members it derives unread counts without per-member
 * writes on every message.
 */
export interface ConversationsTable {
  conversation_id: string;
  kind: 'direct' | 'group';
  title: string | null;
  created_by: string;
  created_at: Timestamp;
  last_seq: number;
  last_activity_at: Timestamp;
  message_count: number;
  last_message_id: string | null;
  last_message_sender: string | null;
  last_message_preview: string | null;
  last_message_sent_at: NullableTimestamp;
  last_message_seq: number | null;
  last_message_deleted: boolean | null;
}

export type ConversationRow = Selectable<ConversationsTable>;
export type NewConversationRow = Insertable<ConversationsTable>;
