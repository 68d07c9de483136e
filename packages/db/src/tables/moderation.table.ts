import type { ReportAction, ReportStatus } from '@chat/events';
import type { Selectable } from 'kysely';
import type { NullableTimestamp, Timestamp } from './conversations.table.js';

/** One row per user banned from a conversation now (MemberBanned; MemberUnbanned deletes it). */
export interface ConversationBansTable {
  conversation_id: string;
  user_id: string;
  banned_by: string;
  banned_at: Timestamp;
  /** seq of the MemberBanned. */
  seq: number;
}
export type ConversationBanRow = Selectable<ConversationBansTable>;

/** One row per report (MessageReported), resolved in place by ReportResolved. */
export interface ReportsTable {
  report_id: string;
  conversation_id: string;
  message_id: string;
  message_sender_id: string;
  reporter_id: string;
  reason: string;
  reported_at: Timestamp;
  status: ReportStatus;
  resolved_by: string | null;
  resolved_at: NullableTimestamp;
  action: ReportAction | null;
  note: string | null;
}
export type ReportRow = Selectable<ReportsTable>;

/** One row per (blocker, blocked) pair blocked now (UserBlocked; UserUnblocked deletes it). */
export interface UserBlocksTable {
  user_id: string;
  blocked_user_id: string;
  blocked_at: Timestamp;
}
export type UserBlockRow = Selectable<UserBlocksTable>;
