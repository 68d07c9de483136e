import type { NotificationLevel } from '@chat/events';
import type { Insertable, Selectable } from 'kysely';
import type { NullableTimestamp } from './conversations.table.js';

/**
 * One row per (conversation, user) that was ever a member or muted it. `active` is current membership.
 * `read_seq` is the read watermark; `read_msg_index` the number of messages with `seq <= read_seq`.
 * `ordinal` orders the initial members as listed in `ConversationStarted`. A row with `active` false may
 * also be a non-member's mute or notification level.
 */
export interface MembersTable {
  conversation_id: string;
  user_id: string;
  active: boolean;
  joined_seq: number;
  ordinal: number;
  read_seq: number;
  read_msg_index: number;
  muted_until: NullableTimestamp;
  /** The level the user set here (it outlives leaving, as a mute does); null: the default by kind. */
  notification_level: NotificationLevel | null;
  /** 'admin' for a member the owner promoted; null otherwise (issue 16: moderation). */
  role: 'admin' | null;
}

export type MemberRow = Selectable<MembersTable>;
export type NewMemberRow = Insertable<MembersTable>;
