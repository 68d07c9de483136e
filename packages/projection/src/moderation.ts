import type { ChatEventOf } from '@chat/events';
import { type RawBuilder, sql } from 'kysely';

// Moderation and blocking in the read models (issue 16): roles on member rows, and the bans, reports
// and blocks tables. state.ts hands these events here; writer.ts writes what they changed with the
// rest of the batch, in the same transaction as the checkpoint.

export const MODERATION_EVENT_TYPES = [
  'MemberRoleChanged',
  'MemberBanned',
  'MemberUnbanned',
  'MessageReported',
  'ReportResolved',
  'UserBlocked',
  'UserUnblocked',
] as const;
export type ModerationEventType = (typeof MODERATION_EVENT_TYPES)[number];
const MODERATION_TYPES = new Set<string>(MODERATION_EVENT_TYPES);

export type ModerationEvent = {
  streamId: string;
  revision: number;
  occurredAt: string;
} & ChatEventOf<ModerationEventType>;

export const isModerationEvent = <E extends { type: string }>(e: E): e is E & ModerationEvent =>
  MODERATION_TYPES.has(e.type);

type BanRow = { conversation_id: string; user_id: string; banned_by: string; banned_at: string; seq: number };
type BlockRow = { user_id: string; blocked_user_id: string; blocked_at: string };
type ReportRow = {
  report_id: string;
  conversation_id: string;
  message_id: string;
  message_sender_id: string;
  reporter_id: string;
  reason: string;
  reported_at: string;
  status: 'open' | 'resolved';
  resolved_by: string | null;
  resolved_at: string | null;
  action: 'dismissed' | 'removed' | null;
  note: string | null;
};
type Resolution = Pick<ReportRow, 'report_id' | 'resolved_by' | 'resolved_at' | 'action' | 'note'>;

/**
 * What a batch did to the moderation tables, last change per key: a ban or block row to hold at the
 * end, or null for none (unbanned, unblocked). Written as a delete of every touched key then an insert
 * of the rows held, so the result does not depend on how the log was cut into batches.
 */
export type ModerationChanges = {
  bans: Map<string, BanRow | null>;
  blocks: Map<string, BlockRow | null>;
  /** Reports filed in this batch (resolved in place when the resolution is in the batch too). */
  reports: Map<string, ReportRow>;
  /** Resolutions of reports filed in earlier batches. */
  resolutions: Map<string, Resolution>;
};

export const emptyModerationChanges = (): ModerationChanges => ({
  bans: new Map(),
  blocks: new Map(),
  reports: new Map(),
  resolutions: new Map(),
});

export const clearModerationChanges = (m: ModerationChanges): void => {
  m.bans.clear();
  m.blocks.clear();
  m.reports.clear();
  m.resolutions.clear();
};

const key = (a: string, b: string) => `${a}\u0000${b}`;

/** The conversation (and member row) an event needs loaded, if any. */
export const moderationKeys = (e: ModerationEvent): { conversationId?: string; memberKey?: string } => {
  switch (e.type) {
    case 'MemberRoleChanged':
      return { conversationId: e.data.conversationId, memberKey: key(e.data.conversationId, e.data.userId) };
    case 'MemberBanned':
    case 'MemberUnbanned':
      return { conversationId: e.data.conversationId };
    default:
      return {};
  }
};

/**
 * Applies one moderation event. `member` is the (conversation, user) row of a role change when it is
 * an active member; `conversation` whether the event is on a started conversation's own stream (its
 * caller then moves the conversation's last seq).
 */
export const applyModeration = (
  m: ModerationChanges,
  e: ModerationEvent,
  context: {
    onConversation: boolean;
    member: { active: boolean; role: 'admin' | null } | undefined;
    markMemberDirty: () => void;
  },
): void => {
  switch (e.type) {
    case 'MemberRoleChanged': {
      if (!context.onConversation || !context.member?.active) return;
      context.member.role = e.data.role === 'admin' ? 'admin' : null;
      context.markMemberDirty();
      return;
    }
    case 'MemberBanned': {
      if (!context.onConversation) return;
      const { conversationId, userId, bannedBy, at } = e.data;
      m.bans.set(key(conversationId, userId), {
        conversation_id: conversationId,
        user_id: userId,
        banned_by: bannedBy,
        banned_at: at,
        seq: e.revision,
      });
      return;
    }
    case 'MemberUnbanned': {
      if (!context.onConversation) return;
      m.bans.set(key(e.data.conversationId, e.data.userId), null);
      return;
    }
    case 'MessageReported': {
      const d = e.data;
      if (m.reports.has(d.reportId)) return;
      m.reports.set(d.reportId, {
        report_id: d.reportId,
        conversation_id: d.conversationId,
        message_id: d.messageId,
        message_sender_id: d.messageSenderId,
        reporter_id: d.reporterId,
        reason: d.reason,
        reported_at: d.reportedAt,
        status: 'open',
        resolved_by: null,
        resolved_at: null,
        action: null,
        note: null,
      });
      return;
    }
    case 'ReportResolved': {
      const d = e.data;
      const resolution: Resolution = {
        report_id: d.reportId,
        resolved_by: d.resolvedBy,
        resolved_at: d.resolvedAt,
        action: d.action,
        note: d.note,
      };
      const filed = m.reports.get(d.reportId);
      if (filed) Object.assign(filed, resolution, { status: 'resolved' });
      else m.resolutions.set(d.reportId, resolution);
      return;
    }
    case 'UserBlocked': {
      const { userId, blockedUserId, at } = e.data;
      m.blocks.set(key(userId, blockedUserId), {
        user_id: userId,
        blocked_user_id: blockedUserId,
        blocked_at: at,
      });
      return;
    }
    case 'UserUnblocked': {
      m.blocks.set(key(e.data.userId, e.data.blockedUserId), null);
      return;
    }
    default: {
      const never: never = e;
      throw new Error(`unhandled moderation event ${JSON.stringify(never)}`);
    }
  }
};

const json = (rows: readonly object[]) => JSON.stringify(rows);

/** The statements writing a batch's moderation changes (built now: the caller may clear `m` after). */
export const moderationStatements = (schema: string, m: ModerationChanges): RawBuilder<unknown>[] => {
  const t = (table: string) => sql.id(schema, table);
  const out: RawBuilder<unknown>[] = [];
  if (m.bans.size > 0) {
    const keys = [...m.bans.keys()].map((k) => k.split('\u0000'));
    out.push(sql`
      DELETE FROM ${t('conversation_bans')} b
       USING unnest(${keys.map((k) => k[0])}::text[], ${keys.map((k) => k[1])}::text[]) AS k(c, u)
       WHERE b.conversation_id = k.c AND b.user_id = k.u`);
    const rows = [...m.bans.values()].filter((r) => r !== null);
    if (rows.length > 0) {
      out.push(sql`
        INSERT INTO ${t('conversation_bans')} (conversation_id, user_id, banned_by, banned_at, seq)
        SELECT conversation_id, user_id, banned_by, banned_at, seq FROM json_to_recordset(${json(rows)}::json)
            AS x(conversation_id text, user_id text, banned_by text, banned_at timestamptz, seq int4)`);
    }
  }
  if (m.blocks.size > 0) {
    const keys = [...m.blocks.keys()].map((k) => k.split('\u0000'));
    out.push(sql`
      DELETE FROM ${t('user_blocks')} b
       USING unnest(${keys.map((k) => k[0])}::text[], ${keys.map((k) => k[1])}::text[]) AS k(u, v)
       WHERE b.user_id = k.u AND b.blocked_user_id = k.v`);
    const rows = [...m.blocks.values()].filter((r) => r !== null);
    if (rows.length > 0) {
      out.push(sql`
        INSERT INTO ${t('user_blocks')} (user_id, blocked_user_id, blocked_at)
        SELECT user_id, blocked_user_id, blocked_at FROM json_to_recordset(${json(rows)}::json)
            AS x(user_id text, blocked_user_id text, blocked_at timestamptz)`);
    }
  }
  if (m.reports.size > 0) {
    out.push(sql`
      INSERT INTO ${t('reports')} (report_id, conversation_id, message_id, message_sender_id, reporter_id,
                                  reason, reported_at, status, resolved_by, resolved_at, action, note)
      SELECT report_id, conversation_id, message_id, message_sender_id, reporter_id,
             reason, reported_at, status, resolved_by, resolved_at, action, note
        FROM json_to_recordset(${json([...m.reports.values()])}::json)
          AS x(report_id text, conversation_id text, message_id text, message_sender_id text, reporter_id text,
               reason text, reported_at timestamptz, status text, resolved_by text, resolved_at timestamptz,
               action text, note text)
      ON CONFLICT (report_id) DO NOTHING`);
  }
  if (m.resolutions.size > 0) {
    out.push(sql`
      UPDATE ${t('reports')} r
         SET status = 'resolved', resolved_by = x.resolved_by, resolved_at = x.resolved_at,
             action = x.action, note = x.note
        FROM json_to_recordset(${json([...m.resolutions.values()])}::json)
          AS x(report_id text, resolved_by text, resolved_at timestamptz, action text, note text)
       WHERE r.report_id = x.report_id`);
  }
  return out;
};
