import { ChatError, type ChatEvent, MAX_CONVERSATION_MEMBERS, startingMembers } from '@chat/events';
import type { ConversationCommand } from './commands.js';
import {
  decideModeration,
  evolveModeration,
  isBanned,
  isModerationCommand,
  isModerator,
  mayModerate,
  requireMember,
} from './moderation.js';
import {
  type ConversationState,
  IDEMPOTENCY_MIN_AGE_MS,
  IDEMPOTENCY_MIN_MESSAGES,
  type MessageRecord,
  type Recorded,
  TYPING_THROTTLE_MS,
} from './state.js';

const invalid = (path: (string | number)[], message: string) =>
  new ChatError('validation_failed', message, [{ path, message }]);

const requireMessage = (state: ConversationState, messageId: string): MessageRecord => {
  const message = state.messages.get(messageId);
  if (!message) throw new ChatError('not_found', 'message not found');
  return message;
};

/**
 * The root a thread reply names: a message of this conversation (400 otherwise, as for `replyTo`) on the
 * main timeline — threads do not nest (400) — and not deleted (404, as for a reaction).
 */
const requireThreadRoot = (state: ConversationState, rootId: string): MessageRecord => {
  const root = state.messages.get(rootId);
  if (!root) throw invalid(['threadRootId'], 'threadRootId must name a message of this conversation');
  if (root.threadRootId !== null)
    throw invalid(['threadRootId'], 'threadRootId names a thread reply; threads do not nest');
  if (root.deleted) throw new ChatError('not_found', 'thread root message not found');
  return root;
};

/** Whether the user has this reaction on the message. */
export const hasReaction = (message: MessageRecord, reaction: string, userId: string): boolean =>
  message.reactions?.get(reaction)?.get(userId)?.present === true;

const sameMemberSet = (a: readonly string[], b: readonly string[]) => {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((m) => set.has(m));
};

/**
 * Decides which events a command produces on the conversation's state. Throws a ChatError when the
 * command is refused. An empty list means "already done": the caller answers from the state.
 */
export const decide = (command: ConversationCommand, state: ConversationState): ChatEvent[] => {
  if (isModerationCommand(command)) return decideModeration(command, state);
  switch (command.type) {
    case 'StartConversation': {
      const { conversationId, kind, title, createdBy } = command.data;
      const members = startingMembers({ createdBy, members: command.data.members });
      const others = members.length - 1;
      if (kind === 'direct') {
        if (others !== 1) throw invalid(['members'], 'a direct conversation has exactly one other member');
        if (title !== null) throw invalid(['title'], 'a direct conversation has no title');
      } else if (others < 1 || members.length > MAX_CONVERSATION_MEMBERS) {
        throw invalid(['members'], `a group has 1..${MAX_CONVERSATION_MEMBERS - 1} other members`);
      }
      if (state.started) {
        const s = state.started;
        if (s.kind === kind && s.title === title && sameMemberSet(s.members, members)) return [];
        throw new ChatError('conflict', 'conversation already exists with different content');
      }
      return [
        {
          type: 'ConversationStarted',
          data: { conversationId, kind, title, createdBy, members },
        },
      ];
    }
    case 'AddMember': {
      const { userId, addedBy } = command.data;
      const started = requireMember(state, addedBy);
      if (started.kind === 'direct')
        throw new ChatError('conflict', 'members cannot be added to a direct conversation');
      if (state.members.has(userId)) return [];
      if (isBanned(state, userId))
        throw new ChatError('forbidden', 'the user is banned from this conversation until unbanned');
      if (state.members.size >= MAX_CONVERSATION_MEMBERS)
        throw new ChatError('conflict', `a group has at most ${MAX_CONVERSATION_MEMBERS} members`);
      return [{ type: 'MemberJoined', data: { conversationId: started.conversationId, userId, addedBy } }];
    }
    case 'RemoveMember': {
      const { userId, removedBy } = command.data;
      const started = requireMember(state, removedBy);
      if (!state.members.has(userId)) throw new ChatError('not_found', 'member not found');
      if (userId !== removedBy && !mayModerate(state, removedBy, userId))
        throw new ChatError('forbidden', 'only the owner, or an admin for members, may remove others');
      return [{ type: 'MemberLeft', data: { conversationId: started.conversationId, userId, removedBy } }];
    }
    case 'SendMessage': {
      const { messageId, senderId, body, replyTo, threadRootId, now } = command.data;
      const started = requireMember(state, senderId);
      const earlier = state.messages.get(messageId);
      if (earlier) {
        const same =
          earlier.senderId === senderId &&
          earlier.sentBody === body &&
          earlier.replyTo === replyTo &&
          earlier.threadRootId === threadRootId;
        if (same) return [];
        throw new ChatError('conflict', 'messageId already used with different content');
      }
      const repliedTo = replyTo === null ? undefined : state.messages.get(replyTo);
      if (replyTo !== null && !repliedTo)
        throw invalid(['replyTo'], 'replyTo must name a message of this conversation');
      const root = threadRootId === null ? undefined : requireThreadRoot(state, threadRootId);
      const data = {
        conversationId: started.conversationId,
        messageId,
        senderId,
        body,
        replyTo,
        sentAt: now,
        ...(repliedTo ? { replyToSenderId: repliedTo.senderId } : {}),
        ...(root && threadRootId !== null
          ? { threadRootId, threadParticipantIds: root.threadParticipants ?? [root.senderId] }
          : {}),
      };
      return [{ type: 'MessageSent', data }];
    }
    case 'EditMessage': {
      const { messageId, editorId, body, now } = command.data;
      const started = requireMember(state, editorId);
      const message = requireMessage(state, messageId);
      if (message.senderId !== editorId) throw new ChatError('forbidden', 'only the sender may edit');
      if (message.deleted) throw new ChatError('conflict', 'the message is deleted');
      return [
        {
          type: 'MessageEdited',
          data: { conversationId: started.conversationId, messageId, editorId, body, editedAt: now },
        },
      ];
    }
    case 'DeleteMessage': {
      const { messageId, deletedBy, now } = command.data;
      const started = requireMember(state, deletedBy);
      const message = requireMessage(state, messageId);
      if (message.senderId !== deletedBy && !isModerator(state, deletedBy))
        throw new ChatError('forbidden', 'only the sender, the owner or an admin may delete');
      if (message.deleted) return [];
      return [
        {
          type: 'MessageDeleted',
          data: { conversationId: started.conversationId, messageId, deletedBy, deletedAt: now },
        },
      ];
    }
    case 'AddReaction':
    case 'RemoveReaction': {
      const { messageId, userId, reaction, now } = command.data;
      const started = requireMember(state, userId);
      const message = requireMessage(state, messageId);
      if (message.deleted) throw new ChatError('not_found', 'message not found');
      const data = { conversationId: started.conversationId, messageId, userId, reaction, at: now };
      const adding = command.type === 'AddReaction';
      // Adding one the user has, or removing one they have not, is already done.
      if (hasReaction(message, reaction, userId) === adding) return [];
      return adding
        ? [{ type: 'ReactionAdded', data: { ...data, messageSenderId: message.senderId } }]
        : [{ type: 'ReactionRemoved', data }];
    }
    case 'MarkRead': {
      const { userId, upToSeq, now } = command.data;
      const started = requireMember(state, userId);
      if (upToSeq > state.lastSeq)
        throw invalid(['upToSeq'], `upToSeq is past the conversation's last seq (${state.lastSeq})`);
      if (upToSeq <= readWatermark(state, userId)) return [];
      return [
        {
          type: 'ConversationRead',
          data: { conversationId: started.conversationId, userId, upToSeq, readAt: now },
        },
      ];
    }
    case 'StartTyping': {
      const { userId, now } = command.data;
      const started = requireMember(state, userId);
      const last = state.lastTypingAt.get(userId);
      if (last !== undefined && Date.parse(now) - last < TYPING_THROTTLE_MS) return [];
      return [{ type: 'TypingStarted', data: { conversationId: started.conversationId, userId, at: now } }];
    }
    case 'RequireMember': {
      requireMember(state, command.data.userId);
      return [];
    }
    case 'Mute': {
      const { userId, until } = command.data;
      const started = requireMember(state, userId);
      return [{ type: 'ConversationMuted', data: { conversationId: started.conversationId, userId, until } }];
    }
    default: {
      const unknownCommand: never = command;
      throw new Error(`unknown command ${JSON.stringify(unknownCommand)}`);
    }
  }
};

/** The member's read watermark: never below the seq that made them a member. */
export const readWatermark = (state: ConversationState, userId: string): number =>
  state.readWatermarks.get(userId) ?? state.members.get(userId)?.seq ?? -1;

const raiseWatermark = (state: ConversationState, userId: string, seq: number) => {
  if (!state.members.has(userId)) return;
  if (seq > readWatermark(state, userId)) state.readWatermarks.set(userId, seq);
};

/**
 * Folds one event, which landed at `at`, into the state. For O(1) cost per event on conversations with
 * long histories it updates the state's collections in place and returns the same object: the command
 * cache owns the state. Records keep `at` itself (not a copy), so a position filled in later — the
 * writer folds a queued command's event before the store confirms it — shows everywhere at once.
 */
export const evolve = (state: ConversationState, event: ChatEvent, at: Recorded): ConversationState => {
  const { seq } = at;
  switch (event.type) {
    case 'ConversationStarted':
      state.started = { ...event.data, at };
      for (const userId of startingMembers(event.data)) state.members.set(userId, at);
      state.lastSeq = seq;
      return state;
    case 'MemberJoined':
      state.members.set(event.data.userId, at);
      state.readWatermarks.set(event.data.userId, seq);
      state.lastSeq = seq;
      return state;
    case 'MemberLeft':
      state.members.delete(event.data.userId);
      state.moderation.admins.delete(event.data.userId);
      state.readWatermarks.delete(event.data.userId);
      state.lastSeq = seq;
      return state;
    case 'MessageSent':
      state.messages.set(event.data.messageId, {
        at,
        senderId: event.data.senderId,
        sentBody: event.data.body,
        replyTo: event.data.replyTo,
        threadRootId: event.data.threadRootId ?? null,
        threadParticipants: null,
        sentAt: event.data.sentAt,
        deleted: null,
        reactions: null,
      });
      joinThread(state, event.data.threadRootId, event.data.senderId);
      state.idempotencyWindow.push(event.data.messageId);
      slideIdempotencyWindow(state, Date.parse(event.data.sentAt));
      raiseWatermark(state, event.data.senderId, seq);
      state.lastSeq = seq;
      return state;
    case 'MessageEdited':
      state.lastSeq = seq;
      return state;
    case 'MessageDeleted': {
      const message = state.messages.get(event.data.messageId);
      if (message && !message.deleted) message.deleted = at;
      state.lastSeq = seq;
      return state;
    }
    case 'ReactionAdded':
    case 'ReactionRemoved': {
      const message = state.messages.get(event.data.messageId);
      if (message) {
        message.reactions ??= new Map();
        let users = message.reactions.get(event.data.reaction);
        if (!users) {
          users = new Map();
          message.reactions.set(event.data.reaction, users);
        }
        users.set(event.data.userId, { present: event.type === 'ReactionAdded', at });
      }
      state.lastSeq = seq;
      return state;
    }
    case 'ConversationRead':
      raiseWatermark(state, event.data.userId, event.data.upToSeq);
      return state;
    case 'TypingStarted':
      state.lastTypingAt.set(event.data.userId, Date.parse(event.data.at));
      return state;
    case 'MemberRoleChanged':
    case 'MemberBanned':
    case 'MemberUnbanned':
      evolveModeration(state, event, at);
      return state;
    case 'ConversationMuted':
    case 'NotificationLevelSet':
    case 'NotificationsRead':
    case 'MessageReported':
    case 'ReportResolved':
    case 'UserBlocked':
    case 'UserUnblocked':
    case 'UserErased':
      return state;
    default: {
      const unknownEvent: never = event;
      throw new Error(`unknown event ${JSON.stringify(unknownEvent)}`);
    }
  }
};

/** A reply makes its sender a participant of the thread (once, in the order of first replies). */
const joinThread = (state: ConversationState, rootId: string | undefined, userId: string) => {
  const root = rootId === undefined ? undefined : state.messages.get(rootId);
  if (!root) return;
  root.threadParticipants ??= [root.senderId];
  if (!root.threadParticipants.includes(userId)) root.threadParticipants.push(userId);
};

/**
 * Bodies are kept for idempotency checks while a message is among the last 1,000 or younger than
 * 24 h; older ones are dropped so a long history costs only a small record per message (its id,
 * sender and seq are still needed for replies, edits and deletes).
 */
const slideIdempotencyWindow = (state: ConversationState, nowMs: number) => {
  const window = state.idempotencyWindow;
  while (window.length > IDEMPOTENCY_MIN_MESSAGES) {
    const oldest = state.messages.get(window[0] ?? '');
    if (oldest && nowMs - Date.parse(oldest.sentAt) < IDEMPOTENCY_MIN_AGE_MS) break;
    if (oldest) oldest.sentBody = null;
    window.shift();
  }
};
