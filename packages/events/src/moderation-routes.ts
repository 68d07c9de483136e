import { z } from 'zod';
import {
  commandErrors,
  conversationParams,
  memberParams,
  messageParams,
  noBody,
  noParams,
  positionResult,
  seqResult,
} from './commands.js';
import { instantSchema, MAX_SEQ, positionSchema, userIdSchema, uuidOutputSchema, uuidSchema } from './ids.js';
import {
  assignableRoleSchema,
  conversationRoleSchema,
  reportActionSchema,
  reportNoteSchema,
  reportReasonSchema,
  reportStatusSchema,
} from './moderation.js';
import { pageCursorSchema, QUERY_ERRORS, STALE_NOTE } from './queries.js';
import type { RouteShape } from './routes.js';

// Moderation and blocking (issue 16, parts 3 and 4): the routes' shapes, each defined once, as
// `commandShapes` and `queryShapes` are (the command-api registers routes, NATS subjects and the
// OpenAPI document from them; the SDK takes its types from them). Kept apart so that the feature
// reads as one piece.

export const setMemberRoleBody = z.strictObject({ role: assignableRoleSchema });
export const reportMessageBody = z.strictObject({ reason: reportReasonSchema });
export const resolveReportBody = z.strictObject({
  action: reportActionSchema,
  note: reportNoteSchema.optional(),
});
export const reportParams = z.strictObject({ reportId: uuidSchema });
export const blockParams = z.strictObject({ userId: userIdSchema });

export const reportResult = z.object({ reportId: uuidOutputSchema, position: positionSchema });

const errors = commandErrors;

export const moderationCommandShapes = {
  setMemberRole: {
    name: 'setMemberRole',
    method: 'PUT',
    path: '/v1/conversations/:conversationId/members/:userId/role',
    summary:
      "Make a member an admin or a member again (the owner only; already so: the earlier event's seq, nothing appended)",
    tags: ['moderation'],
    params: memberParams,
    body: setMemberRoleBody,
    responses: { 200: seqResult.describe('the member has the role, now or earlier') },
    errors: errors('forbidden', 'not_found', 'conflict'),
  },
  banMember: {
    name: 'banMember',
    method: 'PUT',
    path: '/v1/conversations/:conversationId/bans/:userId',
    summary:
      'Ban a user from a group (owner or admin): removes them if a member; they cannot join or be added until unbanned. Already banned: the earlier ban',
    tags: ['moderation'],
    params: memberParams,
    body: noBody,
    responses: { 200: seqResult.describe('banned, now or earlier: the seq of the MemberBanned') },
    errors: errors('forbidden', 'not_found', 'conflict'),
  },
  unbanMember: {
    name: 'unbanMember',
    method: 'DELETE',
    path: '/v1/conversations/:conversationId/bans/:userId',
    summary: 'Lift a ban (owner or admin); not banned any more: the earlier unban. Never banned: 404',
    tags: ['moderation'],
    params: memberParams,
    body: noBody,
    responses: { 200: seqResult.describe('not banned, now or earlier: the seq of the MemberUnbanned') },
    errors: errors('forbidden', 'not_found', 'conflict'),
  },
  reportMessage: {
    name: 'reportMessage',
    method: 'POST',
    path: '/v1/conversations/:conversationId/messages/:messageId/report',
    summary:
      'Report a message to the moderators (members only; one report per reporter and message: again with the same reason answers the first)',
    tags: ['moderation'],
    params: messageParams,
    body: reportMessageBody,
    responses: {
      201: reportResult.describe('reported'),
      200: reportResult.describe('an idempotent repeat: the original report, nothing appended'),
    },
    errors: errors('not_found', 'conflict'),
  },
  resolveReport: {
    name: 'resolveReport',
    method: 'POST',
    path: '/v1/admin/reports/:reportId/resolve',
    summary:
      'Resolve a report (role admin): dismissed, or removed (the message is deleted, deletedBy: you). Again with the same action: the first resolution',
    tags: ['admin'],
    params: reportParams,
    body: resolveReportBody,
    responses: { 200: reportResult.describe('resolved, now or earlier') },
    errors: errors('forbidden', 'not_found', 'conflict'),
  },
  blockUser: {
    name: 'blockUser',
    method: 'PUT',
    path: '/v1/users/me/blocks/:userId',
    summary:
      'Block a user: they cannot start or write to a direct conversation with you, and see no presence of yours (already blocked: the earlier event)',
    tags: ['blocking'],
    params: blockParams,
    body: noBody,
    responses: { 200: positionResult.describe('blocked, now or earlier') },
    errors: errors(),
  },
  unblockUser: {
    name: 'unblockUser',
    method: 'DELETE',
    path: '/v1/users/me/blocks/:userId',
    summary: 'Unblock a user (not blocked any more: the earlier unblock; never blocked: 404)',
    tags: ['blocking'],
    params: blockParams,
    body: noBody,
    responses: { 200: positionResult.describe('not blocked, now or earlier') },
    errors: errors('not_found'),
  },
} as const satisfies Record<string, RouteShape & { body: z.ZodType }>;
export type ModerationCommandShapes = typeof moderationCommandShapes;

const minPosition = z
  .string()
  .regex(/^[0-9a-f]{32}$/i, 'must be a position returned by the server')
  .transform((s) => s.toLowerCase())
  .optional();
const limitParam = z
  .string()
  .regex(/^[0-9]{1,16}$/, 'must be a decimal integer')
  .transform(Number)
  .pipe(z.number().int().min(1).max(100))
  .default(50);

export const listReportsQuery = z.strictObject({
  status: reportStatusSchema.default('open'),
  limit: limitParam,
  cursor: pageCursorSchema.optional(),
  minPosition,
});
export const listBlocksQuery = z.strictObject({ minPosition });

export const reportSchema = z.object({
  reportId: uuidOutputSchema,
  conversationId: uuidOutputSchema,
  messageId: uuidOutputSchema,
  messageSenderId: userIdSchema,
  reporterId: userIdSchema,
  reason: z.string(),
  reportedAt: instantSchema,
  status: reportStatusSchema,
  /** Null while open. */
  resolution: z
    .object({
      action: reportActionSchema,
      resolvedBy: userIdSchema,
      resolvedAt: instantSchema,
      note: z.string().nullable(),
    })
    .nullable(),
});
export type Report = z.output<typeof reportSchema>;
export const reportPageSchema = z.object({ items: z.array(reportSchema), nextCursor: z.string().nullable() });

export const blockSchema = z.object({ userId: userIdSchema, blockedAt: instantSchema });
export type Block = z.output<typeof blockSchema>;
export const blockListSchema = z.object({ items: z.array(blockSchema) });

export const memberRoleSchema = z.object({ userId: userIdSchema, role: conversationRoleSchema });
export type MemberRole = z.output<typeof memberRoleSchema>;
export const banSchema = z.object({
  userId: userIdSchema,
  bannedBy: userIdSchema,
  bannedAt: instantSchema,
  seq: z.number().int().min(0).max(MAX_SEQ),
});
export const moderationViewSchema = z.object({
  /** Every current member with their role, in the order of the conversation's member list. */
  members: z.array(memberRoleSchema),
  /** Users banned now (visible to the owner and admins only; `[]` for members). */
  bans: z.array(banSchema),
});
export type ModerationView = z.output<typeof moderationViewSchema>;

const stale = STALE_NOTE;

export const moderationQueryShapes = {
  listReports: {
    name: 'listReports',
    method: 'GET',
    path: '/v1/admin/reports',
    summary: `The moderation queue (role admin): reports of one status (default open), newest first. ${stale}`,
    tags: ['admin'],
    params: noParams,
    querystring: listReportsQuery,
    responses: { 200: reportPageSchema.describe('a page of reports') },
    errors: [...QUERY_ERRORS, 'forbidden'],
  },
  listBlocks: {
    name: 'listBlocks',
    method: 'GET',
    path: '/v1/users/me/blocks',
    summary: `The users you block, most recent first. ${stale}`,
    tags: ['blocking'],
    params: noParams,
    querystring: listBlocksQuery,
    responses: { 200: blockListSchema.describe('your block list') },
    errors: QUERY_ERRORS,
  },
  getModeration: {
    name: 'getModeration',
    method: 'GET',
    path: '/v1/conversations/:conversationId/moderation',
    summary: `Roles of the members (owner, admin, member) and, for the owner and admins, the bans. ${stale}`,
    tags: ['moderation'],
    params: conversationParams,
    querystring: z.strictObject({ minPosition }),
    responses: { 200: moderationViewSchema.describe('roles and bans') },
    errors: [...QUERY_ERRORS, 'not_found'],
  },
} as const satisfies Record<string, RouteShape>;
export type ModerationQueryShapes = typeof moderationQueryShapes;
