import { ChatError, moderationCommandShapes } from '@chat/events';
import { type Actor, defineCommand, metadataOf, type RegisteredCommand, required } from './catalogue.js';
import { uuidV5 } from './ids.js';

// The commands of moderation and blocking (issue 16). Roles and bans are decided on the conversation
// (their events on its stream, so sockets get them gap-free); reports on their own stream; blocks on
// the blocker's user stream.

const shapes = moderationCommandShapes;

/** One report per (message, reporter): a retry or a second click finds the first. */
export const reportIdOf = (conversationId: string, messageId: string, reporterId: string): string =>
  uuidV5(`report\n${conversationId}\n${messageId}\n${reporterId}`);

const requireAdmin = (actor: Actor) => {
  if (!actor.roles.includes('admin')) throw new ChatError('forbidden', 'admin role required');
};

export const setMemberRole = defineCommand(shapes.setMemberRole, async (services, actor, params, body) => {
  const answer = await services.writer.execute(
    params.conversationId,
    { type: 'SetMemberRole', data: { userId: params.userId, role: body.role, changedBy: actor.userId } },
    metadataOf(actor),
    // A repeat answers with the change that gave the role, or the join when it never changed.
    (state) => required(state.moderation.roleChanges.get(params.userId) ?? state.members.get(params.userId)),
  );
  return { status: 200 as const, result: { seq: answer.seq, position: answer.position } };
});

/** Steps of a ban: a removal, the ban, and one more for a member re-added in between. */
const BAN_STEPS = 4;

export const banMember = defineCommand(shapes.banMember, async (services, actor, params) => {
  const now = services.clock.now().toISOString();
  for (let step = 0; step < BAN_STEPS; step++) {
    const ban = await services.writer.execute(
      params.conversationId,
      { type: 'BanMember', data: { userId: params.userId, bannedBy: actor.userId, now } },
      metadataOf(actor),
      (state) => state.moderation.bans.get(params.userId),
    );
    if (ban?.banned) return { status: 200 as const, result: { seq: ban.at.seq, position: ban.at.position } };
  }
  throw new ChatError('unavailable', 'the member was re-added while being banned; try again');
});

export const unbanMember = defineCommand(shapes.unbanMember, async (services, actor, params) => {
  const now = services.clock.now().toISOString();
  const at = await services.writer.execute(
    params.conversationId,
    { type: 'UnbanMember', data: { userId: params.userId, unbannedBy: actor.userId, now } },
    metadataOf(actor),
    (state) => required(state.moderation.bans.get(params.userId)).at,
  );
  return { status: 200 as const, result: { seq: at.seq, position: at.position } };
});

/**
 * Members only (404 for anyone else, as every conversation command): checked on the conversation,
 * which also names the message's sender; then filed on the report's own stream.
 */
export const reportMessage = defineCommand(shapes.reportMessage, async (services, actor, params, body) => {
  const { conversationId, messageId } = params;
  const senderId = await services.writer.execute(
    conversationId,
    { type: 'RequireReportable', data: { userId: actor.userId, messageId } },
    metadataOf(actor),
    (state) => required(state.messages.get(messageId)).senderId,
  );
  const reportId = reportIdOf(conversationId, messageId, actor.userId);
  const now = services.clock.now().toISOString();
  const { at, appended } = await services.reports.execute(
    reportId,
    {
      type: 'FileReport',
      data: {
        reportId,
        conversationId,
        messageId,
        messageSenderId: senderId,
        reporterId: actor.userId,
        reason: body.reason,
        now,
      },
    },
    metadataOf(actor),
    (state, appended) => ({ at: required(state.filed).at, appended: appended !== null }),
  );
  return { status: appended ? (201 as const) : (200 as const), result: { reportId, position: at.position } };
});

/**
 * Platform admins (JWT role `admin`) work the queue. `removed` deletes the message first (deletedBy:
 * the admin, on the conversation stream, so members' sockets see it), then records the resolution; a
 * retry after a failure in between finds the message deleted and goes on.
 */
export const resolveReport = defineCommand(shapes.resolveReport, async (services, actor, params, body) => {
  requireAdmin(actor);
  const { reportId } = params;
  const now = services.clock.now().toISOString();
  const filed = await services.reports.execute(
    reportId,
    { type: 'RequireReport', data: { reportId } },
    metadataOf(actor),
    (state) => required(state.filed),
  );
  if (body.action === 'removed') {
    await services.writer.execute(
      filed.conversationId,
      { type: 'RemoveReportedMessage', data: { messageId: filed.messageId, deletedBy: actor.userId, now } },
      metadataOf(actor),
      () => null,
    );
  }
  const at = await services.reports.execute(
    reportId,
    {
      type: 'ResolveReport',
      data: { reportId, resolvedBy: actor.userId, action: body.action, note: body.note ?? null, now },
    },
    metadataOf(actor),
    (state) => required(state.resolved).at,
  );
  return { status: 200 as const, result: { reportId, position: at.position } };
});

export const blockUser = defineCommand(shapes.blockUser, async (services, actor, params) => {
  const now = services.clock.now().toISOString();
  const at = await services.users.execute(
    actor.userId,
    { type: 'BlockUser', data: { userId: actor.userId, blockedUserId: params.userId, now } },
    metadataOf(actor),
    (state) => required(state.blocks.get(params.userId)).at,
  );
  return { status: 200 as const, result: { position: at.position } };
});

export const unblockUser = defineCommand(shapes.unblockUser, async (services, actor, params) => {
  const now = services.clock.now().toISOString();
  const at = await services.users.execute(
    actor.userId,
    { type: 'UnblockUser', data: { userId: actor.userId, blockedUserId: params.userId, now } },
    metadataOf(actor),
    (state) => required(state.blocks.get(params.userId)).at,
  );
  return { status: 200 as const, result: { position: at.position } };
});

export const moderationCommands: readonly RegisteredCommand[] = [
  setMemberRole,
  banMember,
  unbanMember,
  reportMessage,
  resolveReport,
  blockUser,
  unblockUser,
];
