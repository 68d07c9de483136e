import { ChatError, type ChatEvent, type ConversationRole } from '@chat/events';
import type { ConversationCommandFields } from './commands.js';
import type { ConversationState, Recorded } from './state.js';

// Moderation of one conversation (issue 16): roles, bans and moderators' deletes, decided on the
// conversation's state like every conversation command, so the events land on the conversation stream
// and reach sockets gap-free. decider.ts hands these commands and events here.

/** What the conversation's state keeps for moderation. */
export type ModerationState = {
  /** Members the owner made admins, with the event that did. Cleared when they leave. */
  admins: Map<string, Recorded>;
  /** The last MemberRoleChanged per user: a repeat of a role change answers with it. */
  roleChanges: Map<string, Recorded>;
  /** The last ban or unban per user: `banned` now or not, and the event that made it so. */
  bans: Map<string, { banned: boolean; at: Recorded }>;
};

export const initialModerationState = (): ModerationState => ({
  admins: new Map(),
  roleChanges: new Map(),
  bans: new Map(),
});

export type ModerationCommand =
  | { type: 'SetMemberRole'; data: ConversationCommandFields<'setMemberRole'> & { changedBy: string } }
  /**
   * One step of a ban: removes the user while a member (MemberLeft), then bans (MemberBanned); the
   * caller repeats it until it appends nothing.
   */
  | { type: 'BanMember'; data: ConversationCommandFields<'banMember'> & { bannedBy: string; now: string } }
  | {
      type: 'UnbanMember';
      data: ConversationCommandFields<'unbanMember'> & { unbannedBy: string; now: string };
    }
  /** Appends nothing: a member may report a message of the conversation that is not deleted. */
  | { type: 'RequireReportable'; data: { userId: string; messageId: string } }
  /**
   * A platform admin resolving a report with `removed` (role admin, checked by the caller): deletes the
   * message whoever they are; already deleted: nothing.
   */
  | { type: 'RemoveReportedMessage'; data: { messageId: string; deletedBy: string; now: string } };

const MODERATION_COMMANDS = new Set<string>([
  'SetMemberRole',
  'BanMember',
  'UnbanMember',
  'RequireReportable',
  'RemoveReportedMessage',
]);
export const isModerationCommand = (command: { type: string }): command is ModerationCommand =>
  MODERATION_COMMANDS.has(command.type);

/** The user's role here, or undefined when they are not a member. */
export const roleOf = (state: ConversationState, userId: string): ConversationRole | undefined => {
  if (!state.started || !state.members.has(userId)) return undefined;
  if (state.started.createdBy === userId) return 'owner';
  return state.moderation.admins.has(userId) ? 'admin' : 'member';
};

/** Whether `actor` may moderate `target` (remove, ban): the owner anyone, an admin plain members. */
export const mayModerate = (state: ConversationState, actor: string, target: string): boolean => {
  const role = roleOf(state, actor);
  if (role === 'owner') return target !== actor;
  if (role !== 'admin') return false;
  const targetRole = roleOf(state, target);
  return targetRole !== 'owner' && targetRole !== 'admin' && target !== actor;
};

/** Owners and admins: they delete any message. */
export const isModerator = (state: ConversationState, userId: string): boolean => {
  const role = roleOf(state, userId);
  return role === 'owner' || role === 'admin';
};

export const isBanned = (state: ConversationState, userId: string): boolean =>
  state.moderation.bans.get(userId)?.banned === true;

const notFound = () => new ChatError('not_found', 'conversation not found');

/** The caller, a member, or 404: a non-member must not learn whether the conversation exists. */
export const requireMember = (state: ConversationState, userId: string) => {
  if (!state.started || !state.members.has(userId)) throw notFound();
  return state.started;
};

const requireGroup = (started: NonNullable<ConversationState['started']>) => {
  if (started.kind === 'direct') throw new ChatError('conflict', 'a direct conversation has no moderation');
};

export const decideModeration = (command: ModerationCommand, state: ConversationState): ChatEvent[] => {
  switch (command.type) {
    case 'SetMemberRole': {
      const { userId, role, changedBy } = command.data;
      const started = requireMember(state, changedBy);
      requireGroup(started);
      if (roleOf(state, changedBy) !== 'owner')
        throw new ChatError('forbidden', 'only the owner may change roles');
      const current = roleOf(state, userId);
      if (current === undefined) throw new ChatError('not_found', 'member not found');
      if (current === 'owner') throw new ChatError('conflict', "the owner's role cannot change");
      if (current === role) return [];
      const { conversationId } = started;
      return [{ type: 'MemberRoleChanged', data: { conversationId, userId, role, changedBy } }];
    }
    case 'BanMember': {
      const { userId, bannedBy, now } = command.data;
      const started = requireMember(state, bannedBy);
      requireGroup(started);
      if (!isModerator(state, bannedBy))
        throw new ChatError('forbidden', 'only the owner and admins may ban');
      if (userId === bannedBy) throw new ChatError('conflict', 'you cannot ban yourself');
      if (!mayModerate(state, bannedBy, userId))
        throw new ChatError('forbidden', 'admins may ban members only; only the owner may ban admins');
      if (isBanned(state, userId)) return [];
      const { conversationId } = started;
      // A command appends one event: a member is removed first (every fold of membership knows
      // MemberLeft), and the caller decides the command again, which then bans.
      return state.members.has(userId)
        ? [{ type: 'MemberLeft', data: { conversationId, userId, removedBy: bannedBy } }]
        : [{ type: 'MemberBanned', data: { conversationId, userId, bannedBy, at: now } }];
    }
    case 'UnbanMember': {
      const { userId, unbannedBy, now } = command.data;
      const started = requireMember(state, unbannedBy);
      requireGroup(started);
      if (!isModerator(state, unbannedBy))
        throw new ChatError('forbidden', 'only the owner and admins may lift a ban');
      const ban = state.moderation.bans.get(userId);
      if (!ban) throw new ChatError('not_found', 'ban not found');
      if (!ban.banned) return [];
      const { conversationId } = started;
      return [{ type: 'MemberUnbanned', data: { conversationId, userId, unbannedBy, at: now } }];
    }
    case 'RequireReportable': {
      const { userId, messageId } = command.data;
      requireMember(state, userId);
      const message = state.messages.get(messageId);
      if (!message || message.deleted) throw new ChatError('not_found', 'message not found');
      return [];
    }
    case 'RemoveReportedMessage': {
      const { messageId, deletedBy, now } = command.data;
      if (!state.started) throw notFound();
      const message = state.messages.get(messageId);
      if (!message) throw new ChatError('not_found', 'message not found');
      if (message.deleted) return [];
      const { conversationId } = state.started;
      return [{ type: 'MessageDeleted', data: { conversationId, messageId, deletedBy, deletedAt: now } }];
    }
    default: {
      const unknownCommand: never = command;
      throw new Error(`unknown command ${JSON.stringify(unknownCommand)}`);
    }
  }
};

type ModerationEventOnConversation = Extract<
  ChatEvent,
  { type: 'MemberRoleChanged' | 'MemberBanned' | 'MemberUnbanned' }
>;

/** Folds a moderation event of the conversation stream (in place). */
export const evolveModeration = (
  state: ConversationState,
  event: ModerationEventOnConversation,
  at: Recorded,
) => {
  const m = state.moderation;
  switch (event.type) {
    case 'MemberRoleChanged':
      if (event.data.role === 'admin') m.admins.set(event.data.userId, at);
      else m.admins.delete(event.data.userId);
      m.roleChanges.set(event.data.userId, at);
      break;
    case 'MemberBanned':
      m.bans.set(event.data.userId, { banned: true, at });
      break;
    case 'MemberUnbanned':
      m.bans.set(event.data.userId, { banned: false, at });
      break;
    default: {
      const never: never = event;
      throw new Error(`unknown event ${JSON.stringify(never)}`);
    }
  }
  state.lastSeq = at.seq;
};
