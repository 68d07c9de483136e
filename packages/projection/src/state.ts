import type {
  ConversationsTable,
  MembersTable,
  MessageReactionsTable,
  MessagesTable,
  RowValues,
} from '@chat/db';
import {
  type ChatEvent,
  type ChatEventOf,
  conversationStream,
  type EventType,
  isEventType,
  parseEvent,
  preview,
  startingMembers,
} from '@chat/events';
import type { RecordedEvent } from '@chat/eventstore';
import {
  applyModeration,
  emptyModerationChanges,
  isModerationEvent,
  type ModerationChanges,
  type ModerationEvent,
  moderationKeys,
} from './moderation.js';

// The pure half of the projection: rows of one batch held in memory, changed event by event, then
// written back by `writer.ts`. No I/O here, so the fold is easy to reason about and fast to replay.

export type ConversationState = RowValues<ConversationsTable>;

export type MemberState = RowValues<MembersTable>;

export type MessageState = RowValues<MessagesTable>;

export type ReactionState = RowValues<MessageReactionsTable>;

/**
 * What a batch does to one (message, reaction, user): whether it removed the reaction at some point and
 * whether it holds it at the end (`add`, with the seq of the add after the last removal). Written as a
 * delete then an insert that keeps an existing row, so the result does not depend on how the log was cut
 * into batches: an add of a reaction the user has changes nothing, as the decider decides.
 */
export type ReactionChange = { row: ReactionState; remove: boolean; add: boolean };

export const pairKey = (a: string, b: string): string => `${a}\u0000${b}`;
export const splitKey = (key: string): [string, string] => {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
};

export type BatchState = {
  conversations: Map<string, ConversationState>;
  members: Map<string, MemberState>;
  messages: Map<string, MessageState>;
  /** Reaction changes by (conversation, message, reaction, user). */
  reactions: Map<string, ReactionChange>;
  dirtyConversations: Set<string>;
  dirtyMembers: Set<string>;
  dirtyMessages: Set<string>;
  /** Members whose watermark moved below the newest message: their read_msg_index is recomputed in SQL. */
  readIndexPending: Set<string>;
  /**
   * Unread counts that changed for a reason a client cannot see in its event stream (API.md §4): the
   * (conversation, user) pairs of MarkReads, and per conversation the highest seq of a deleted message
   * (the members whose watermark is below it had not read it). A new message changes counts the
   * clients derive themselves, so it is not here.
   */
  unreadPairs: Set<string>;
  deletedUnread: Map<string, number>;
  /** Bans, reports and blocks (moderation.ts). */
  moderation: ModerationChanges;
};

export const emptyBatchState = (): BatchState => ({
  conversations: new Map(),
  members: new Map(),
  messages: new Map(),
  reactions: new Map(),
  dirtyConversations: new Set(),
  dirtyMembers: new Set(),
  dirtyMessages: new Set(),
  readIndexPending: new Set(),
  unreadPairs: new Set(),
  deletedUnread: new Map(),
  moderation: emptyModerationChanges(),
});

/** A stored event the projection understands, upcast and validated. */
type ProjectedType = Exclude<EventType, 'TypingStarted' | 'NotificationsRead'>;
export type ProjectedEvent = {
  streamId: string;
  revision: number;
  occurredAt: string;
} & ChatEventOf<ProjectedType>;

const isProjected = (e: ChatEvent): e is ChatEventOf<ProjectedType> =>
  e.type !== 'TypingStarted' && e.type !== 'NotificationsRead';

/**
 * An event this projection cannot apply: its data fails its schema, which holds every value to what
 * the read-model columns store (storable text, instants 1970–9999, seq within int4).
 */
export class MalformedEventError extends Error {
  override readonly name = 'MalformedEventError';
}

/**
 * Parses a stored event (the store has upcast it already); undefined for types this projection
 * ignores, unknown ones included (written by a newer build). Throws MalformedEventError when the
 * event cannot be applied, before anything is written, so the caller can set it aside.
 */
export const toProjectedEvent = (event: RecordedEvent): ProjectedEvent | undefined => {
  if (!isEventType(event.type) || event.type === 'TypingStarted' || event.type === 'NotificationsRead') {
    return undefined;
  }
  let parsed: ChatEvent;
  try {
    parsed = parseEvent(event.type, event.data);
  } catch (cause) {
    throw new MalformedEventError('its data does not match the schema', { cause });
  }
  if (!isProjected(parsed)) return undefined;
  return { ...parsed, streamId: event.streamId, revision: event.revision, occurredAt: event.occurredAt };
};

export type BatchKeys = { conversationIds: Set<string>; memberKeys: Set<string>; messageKeys: Set<string> };

/** The rows a batch reads before it can be applied. */
export const keysOf = (events: readonly ProjectedEvent[]): BatchKeys => {
  const keys: BatchKeys = { conversationIds: new Set(), memberKeys: new Set(), messageKeys: new Set() };
  for (const e of events) {
    if (isModerationEvent(e)) {
      const { conversationId, memberKey } = moderationKeys(e);
      if (conversationId !== undefined) keys.conversationIds.add(conversationId);
      if (memberKey !== undefined) keys.memberKeys.add(memberKey);
      continue;
    }
    const c = e.data.conversationId;
    switch (e.type) {
      case 'ConversationStarted':
        keys.conversationIds.add(c);
        for (const u of startingMembers(e.data)) keys.memberKeys.add(pairKey(c, u));
        break;
      case 'MemberJoined':
      case 'MemberLeft':
        keys.conversationIds.add(c);
        keys.memberKeys.add(pairKey(c, e.data.userId));
        break;
      case 'MessageSent':
        keys.conversationIds.add(c);
        keys.memberKeys.add(pairKey(c, e.data.senderId));
        break;
      case 'MessageEdited':
      case 'MessageDeleted':
        keys.conversationIds.add(c);
        keys.messageKeys.add(pairKey(c, e.data.messageId));
        break;
      case 'ReactionAdded':
      case 'ReactionRemoved':
        keys.conversationIds.add(c);
        break;
      case 'ConversationRead':
        keys.conversationIds.add(c);
        keys.memberKeys.add(pairKey(c, e.data.userId));
        break;
      case 'ConversationMuted':
      case 'NotificationLevelSet':
        keys.memberKeys.add(pairKey(c, e.data.userId));
        break;
      default: {
        const never: never = e;
        return never;
      }
    }
  }
  return keys;
};

const touchConversation = (s: BatchState, e: ProjectedEvent, c: ConversationState): void => {
  if (e.revision >= c.last_seq) {
    c.last_seq = e.revision;
    c.last_activity_at = e.occurredAt;
  }
  s.dirtyConversations.add(c.conversation_id);
};

const join = (s: BatchState, c: ConversationState, userId: string, seq: number, ordinal: number): void => {
  const key = pairKey(c.conversation_id, userId);
  const existing = s.members.get(key);
  if (existing?.active) return;
  s.members.set(key, {
    conversation_id: c.conversation_id,
    user_id: userId,
    active: true,
    joined_seq: seq,
    ordinal,
    read_seq: seq,
    read_msg_index: c.message_count,
    // A mute and a level belong to the user and the conversation: they survive leaving and re-joining.
    muted_until: existing?.muted_until ?? null,
    notification_level: existing?.notification_level ?? null,
    role: null,
  });
  s.dirtyMembers.add(key);
  s.readIndexPending.delete(key);
};

/**
 * The (conversation, user) row that holds the user's mute and notification level, marked dirty: the
 * member row, or an inactive one for a user who is not (or no longer) a member.
 */
const preferencesOf = (s: BatchState, conversationId: string, userId: string): MemberState => {
  const key = pairKey(conversationId, userId);
  let m = s.members.get(key);
  if (!m) {
    m = {
      conversation_id: conversationId,
      user_id: userId,
      active: false,
      joined_seq: 0,
      ordinal: 0,
      read_seq: 0,
      read_msg_index: 0,
      muted_until: null,
      notification_level: null,
      role: null,
    };
    s.members.set(key, m);
  }
  s.dirtyMembers.add(key);
  return m;
};

/** Applies one event to the batch's rows. Events of a conversation that was never started are ignored. */
export const applyEvent = (s: BatchState, e: ProjectedEvent): void => {
  if (isModerationEvent(e)) {
    applyModerationEvent(s, e);
    return;
  }
  const c = s.conversations.get(e.data.conversationId);
  const isConversationEvent = e.streamId === conversationStream(e.data.conversationId);
  switch (e.type) {
    case 'ConversationStarted': {
      if (c || !isConversationEvent) return;
      const created: ConversationState = {
        conversation_id: e.data.conversationId,
        kind: e.data.kind,
        title: e.data.title,
        created_by: e.data.createdBy,
        created_at: e.occurredAt,
        last_seq: e.revision,
        last_activity_at: e.occurredAt,
        message_count: 0,
        last_message_id: null,
        last_message_sender: null,
        last_message_preview: null,
        last_message_sent_at: null,
        last_message_seq: null,
        last_message_deleted: null,
      };
      s.conversations.set(created.conversation_id, created);
      s.dirtyConversations.add(created.conversation_id);
      startingMembers(e.data).forEach((u, i) => {
        join(s, created, u, e.revision, i);
      });
      return;
    }
    case 'MemberJoined': {
      if (!c || !isConversationEvent) return;
      touchConversation(s, e, c);
      join(s, c, e.data.userId, e.revision, 0);
      return;
    }
    case 'MemberLeft': {
      if (!c || !isConversationEvent) return;
      touchConversation(s, e, c);
      const key = pairKey(c.conversation_id, e.data.userId);
      const m = s.members.get(key);
      if (m?.active) {
        m.active = false;
        m.role = null;
        s.dirtyMembers.add(key);
      }
      return;
    }
    case 'MessageSent': {
      if (!c || !isConversationEvent) return;
      touchConversation(s, e, c);
      c.message_count += 1;
      const d = e.data;
      const msgKey = pairKey(c.conversation_id, d.messageId);
      s.messages.set(msgKey, {
        conversation_id: c.conversation_id,
        seq: e.revision,
        message_id: d.messageId,
        msg_index: c.message_count,
        sender_id: d.senderId,
        body: d.body,
        reply_to: d.replyTo,
        sent_at: d.sentAt,
        edited_at: null,
        deleted: false,
        deleted_by: null,
      });
      s.dirtyMessages.add(msgKey);
      c.last_message_id = d.messageId;
      c.last_message_sender = d.senderId;
      c.last_message_preview = preview(d.body);
      c.last_message_sent_at = d.sentAt;
      c.last_message_seq = e.revision;
      c.last_message_deleted = false;
      // Sending moves the sender's own watermark to the message: own messages are never unread.
      const senderKey = pairKey(c.conversation_id, d.senderId);
      const sender = s.members.get(senderKey);
      if (sender?.active && e.revision > sender.read_seq) {
        sender.read_seq = e.revision;
        sender.read_msg_index = c.message_count;
        s.dirtyMembers.add(senderKey);
        s.readIndexPending.delete(senderKey);
      }
      return;
    }
    case 'MessageEdited': {
      if (!c || !isConversationEvent) return;
      touchConversation(s, e, c);
      const key = pairKey(c.conversation_id, e.data.messageId);
      const m = s.messages.get(key);
      if (!m || m.deleted) return;
      m.body = e.data.body;
      m.edited_at = e.data.editedAt;
      s.dirtyMessages.add(key);
      if (c.last_message_id === m.message_id) c.last_message_preview = preview(e.data.body);
      return;
    }
    case 'MessageDeleted': {
      if (!c || !isConversationEvent) return;
      touchConversation(s, e, c);
      const key = pairKey(c.conversation_id, e.data.messageId);
      const m = s.messages.get(key);
      if (!m || m.deleted) return;
      m.deleted = true;
      m.deleted_by = e.data.deletedBy;
      m.body = null;
      s.dirtyMessages.add(key);
      if (c.last_message_id === m.message_id) {
        c.last_message_preview = '';
        c.last_message_deleted = true;
      }
      s.deletedUnread.set(c.conversation_id, Math.max(s.deletedUnread.get(c.conversation_id) ?? -1, m.seq));
      return;
    }
    case 'ReactionAdded':
    case 'ReactionRemoved': {
      if (!c || !isConversationEvent) return;
      touchConversation(s, e, c);
      const { messageId, reaction, userId } = e.data;
      const key = [c.conversation_id, messageId, reaction, userId].join('\u0000');
      let change = s.reactions.get(key);
      if (!change) {
        const row = {
          conversation_id: c.conversation_id,
          message_id: messageId,
          reaction,
          user_id: userId,
          seq: 0,
        };
        change = { row, remove: false, add: false };
        s.reactions.set(key, change);
      }
      if (e.type === 'ReactionRemoved') {
        change.remove = true;
        change.add = false;
      } else if (!change.add) {
        change.add = true;
        change.row.seq = e.revision;
      }
      return;
    }
    case 'ConversationRead': {
      const key = pairKey(e.data.conversationId, e.data.userId);
      const m = s.members.get(key);
      if (!c || !m?.active || e.data.upToSeq <= m.read_seq) return;
      m.read_seq = e.data.upToSeq;
      if (c.last_message_seq === null || e.data.upToSeq >= c.last_message_seq) {
        m.read_msg_index = c.message_count;
        s.readIndexPending.delete(key);
      } else {
        s.readIndexPending.add(key);
      }
      s.dirtyMembers.add(key);
      s.unreadPairs.add(key);
      return;
    }
    case 'ConversationMuted': {
      preferencesOf(s, e.data.conversationId, e.data.userId).muted_until = e.data.until;
      return;
    }
    case 'NotificationLevelSet': {
      preferencesOf(s, e.data.conversationId, e.data.userId).notification_level = e.data.level;
      return;
    }
    default: {
      const never: never = e;
      throw new Error(`unhandled event ${JSON.stringify(never)}`);
    }
  }
};

/** Moderation events (moderation.ts); those on a started conversation's own stream move its last seq. */
const applyModerationEvent = (s: BatchState, e: ProjectedEvent & ModerationEvent): void => {
  const conversationId =
    e.type === 'UserBlocked' || e.type === 'UserUnblocked' ? undefined : e.data.conversationId;
  const c = conversationId === undefined ? undefined : s.conversations.get(conversationId);
  const onConversation = c !== undefined && e.streamId === conversationStream(c.conversation_id);
  if (onConversation && c) touchConversation(s, e, c);
  const memberKey =
    e.type === 'MemberRoleChanged' ? pairKey(e.data.conversationId, e.data.userId) : undefined;
  applyModeration(s.moderation, e, {
    onConversation,
    member: memberKey === undefined ? undefined : s.members.get(memberKey),
    markMemberDirty: () => {
      if (memberKey !== undefined) s.dirtyMembers.add(memberKey);
    },
  });
};
