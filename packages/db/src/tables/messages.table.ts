import type { Insertable, Selectable } from 'kysely';
import type { NullableTimestamp, Timestamp } from './conversations.table.js';

/** One row per `MessageSent`; a delete leaves a tombstone (`body` null, `deleted` true). */
export interface MessagesTable {
  conversation_id: string;
  seq: number;
  message_id: string;
  /** 1-based ordinal of the message among the conversation's messages. */
  msg_index: number;
  sender_id: string;
  body: string | null;
  reply_to: string | null;
  sent_at: Timestamp;
  edited_at: NullableTimestamp;
  deleted: boolean;
  /** Who deleted the message: its sender or a moderator (null while not deleted). */
  deleted_by: string | null;
}

export type MessageRow = Selectable<MessagesTable>;
export type NewMessageRow = Insertable<MessagesTable>;

/** One row per (message, reaction, user) currently reacting so; `seq` of the ReactionAdded. */
export interface MessageReactionsTable {
  conversation_id: string;
  message_id: string;
  reaction: string;
  user_id: string;
  seq: number;
}

export type MessageReactionRow = Selectable<MessageReactionsTable>;
