import { z } from 'zod';
import { codePointLength, instantSchema, userIdSchema, uuidOutputSchema } from './ids.js';
import { textSchema } from './text.js';
import type { EventDefinition } from './traits.js';

// Moderation and blocking (issue 16, parts 3 and 4): the events' definitions, kept apart from
// events.ts so that they read as one feature. events.ts spreads them into `eventDefinitions`.

/** A member's role (API.md §2.6): the creator is the conversation's one `owner`. */
export const conversationRoleSchema = z.enum(['owner', 'admin', 'member']);
export type ConversationRole = z.infer<typeof conversationRoleSchema>;
/** What an owner may set: the owner's role itself never changes. */
export const assignableRoleSchema = z.enum(['admin', 'member']);
export type AssignableRole = z.infer<typeof assignableRoleSchema>;

export const REPORT_REASON_MAX = 500;
export const REPORT_NOTE_MAX = 1000;
const trimmed = (max: number) =>
  textSchema
    .transform((s) => s.trim())
    .refine((s) => s.length > 0, 'must not be empty or only whitespace')
    .refine((s) => codePointLength(s) <= max, `must be at most ${max} characters`);
export const reportReasonSchema = trimmed(REPORT_REASON_MAX);
export const reportNoteSchema = trimmed(REPORT_NOTE_MAX);

/** How a report was resolved: `removed` deletes the reported message (deletedBy: the resolver). */
export const reportActionSchema = z.enum(['dismissed', 'removed']);
export type ReportAction = z.infer<typeof reportActionSchema>;
export const reportStatusSchema = z.enum(['open', 'resolved']);
export type ReportStatus = z.infer<typeof reportStatusSchema>;

const id = uuidOutputSchema;
const user = userIdSchema;
const time = instantSchema;

export const moderationEvents = {
  /** The owner made `userId` an admin or a member again. */
  MemberRoleChanged: {
    data: z.looseObject({ conversationId: id, userId: user, role: assignableRoleSchema, changedBy: user }),
    stream: 'conversation',
    relay: 'conversation',
    unread: 'none',
  },
  /**
   * Right after the `MemberLeft` that removed a banned member (when they were one; that event is the
   * removal, for membership and unread counts): they cannot join or be added until a `MemberUnbanned`.
   */
  MemberBanned: {
    data: z.looseObject({ conversationId: id, userId: user, bannedBy: user, at: time }),
    stream: 'conversation',
    relay: 'conversation',
    unread: 'none',
  },
  MemberUnbanned: {
    data: z.looseObject({ conversationId: id, userId: user, unbannedBy: user, at: time }),
    stream: 'conversation',
    relay: 'conversation',
    unread: 'none',
  },
  /**
   * On the report's own stream `report-<reportId>` (never the conversation's, whose events reach every
   * member's socket: the reporter and the reason are for moderators only). One report per reporter and
   * message: `reportId` is derived from the pair.
   */
  MessageReported: {
    data: z.looseObject({
      reportId: id,
      conversationId: id,
      messageId: id,
      messageSenderId: user,
      reporterId: user,
      reason: textSchema,
      reportedAt: time,
    }),
    stream: 'report',
    relay: 'none',
  },
  ReportResolved: {
    data: z.looseObject({
      reportId: id,
      conversationId: id,
      messageId: id,
      resolvedBy: user,
      action: reportActionSchema,
      note: textSchema.nullable(),
      resolvedAt: time,
    }),
    stream: 'report',
    relay: 'none',
  },
  /** On the blocker's (`userId`'s) own stream. */
  UserBlocked: {
    data: z.looseObject({ userId: user, blockedUserId: user, at: time }),
    stream: 'user',
    relay: 'block',
  },
  UserUnblocked: {
    data: z.looseObject({ userId: user, blockedUserId: user, at: time }),
    stream: 'user',
    relay: 'block',
  },
} as const satisfies Record<string, EventDefinition>;
