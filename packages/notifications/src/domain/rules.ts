import type { ChatEventOf, NotificationKind } from '@chat/events';
import { defaultNotificationLevel, mentionedUserIds, preview } from '@chat/events';
import { type ConversationState, levelOf } from './conversation.js';

/** One notification record as the notifier stores it. */
export type NotificationRecord = {
  notificationId: string;
  recipientId: string;
  kind: NotificationKind;
  conversationId: string;
  messageId: string;
  actorId: string;
  /** null: the text it previews was written by a user since erased (README "Erasure"). */
  preview: string | null;
  /** The message's `sentAt`: deterministic, so a replay reproduces it. */
  createdAt: string;
  readAt: string | null;
};

/** Deterministic id from the message, the recipient and what was done (a replay reproduces it). */
export type NotificationIdFor = (
  conversationId: string,
  messageId: string,
  recipientId: string,
  ...detail: string[]
) => string;

/** Whether `userId` can be notified of what happens at `atMs`: a member, level not `none`, not muted. */
const reachable = (state: ConversationState, userId: string, atMs: number): boolean => {
  if (!state.members.has(userId) || levelOf(state, userId) === 'none') return false;
  const mutedUntil = state.mutes.get(userId);
  return mutedUntil === undefined || mutedUntil <= atMs;
};

/**
 * The records one `MessageSent` produces (API.md §2.4): at most one per member, never the sender, by
 * the member's level at send time — `all`: every message; `mentions`: when the body mentions them, the
 * message replies to theirs or it replies in a thread they take part in; `none` or muted: nothing. Kind
 * `mention` when the body mentions the recipient, else `reply` when it replies to their message, else
 * `thread` for a thread participant, else `message`.
 *
 * The work is proportional to the records it can create, never to the size of the group: candidates
 * are the users the body mentions (one pass over the body), the sender of the replied-to message
 * (carried on the event) and the members on `all` (in a group, only those who chose it; in a direct
 * conversation, whose default is `all`, its two members). A group message that addresses nobody looks
 * at no member.
 */
export const notificationsFor = (
  state: ConversationState,
  sent: ChatEventOf<'MessageSent'>['data'],
  notificationIdFor: NotificationIdFor,
): NotificationRecord[] => {
  const sentAt = Date.parse(sent.sentAt);
  const kinds = new Map<string, NotificationKind>();
  // An erased sender's body reads as null: it mentions nobody the notifier can see.
  for (const userId of mentionedUserIds(sent.body ?? '')) kinds.set(userId, 'mention');
  const repliedTo = sent.replyToSenderId;
  if (repliedTo !== undefined && !kinds.has(repliedTo)) kinds.set(repliedTo, 'reply');
  // A thread reply reaches the thread's participants (its root's author and earlier repliers, carried
  // on the event) at level `mentions` and `all`; a mention or a reply to their own message says more.
  for (const userId of sent.threadParticipantIds ?? []) {
    if (!kinds.has(userId)) kinds.set(userId, 'thread');
  }
  // Where the default is `all` (direct conversations: two members) every member is a candidate;
  // elsewhere only those who chose `all`.
  const everyMessage = defaultNotificationLevel(state.kind) === 'all' ? state.members : state.everyMessage;
  for (const userId of everyMessage) {
    if (!kinds.has(userId) && levelOf(state, userId) === 'all') kinds.set(userId, 'message');
  }
  const records: NotificationRecord[] = [];
  let text: string | null | undefined;
  for (const [recipientId, kind] of kinds) {
    if (recipientId === sent.senderId || !reachable(state, recipientId, sentAt)) continue;
    if (text === undefined) text = sent.body === null ? null : preview(sent.body);
    records.push({
      notificationId: notificationIdFor(sent.conversationId, sent.messageId, recipientId),
      recipientId,
      kind,
      conversationId: sent.conversationId,
      messageId: sent.messageId,
      actorId: sent.senderId,
      preview: text,
      createdAt: sent.sentAt,
      readAt: null,
    });
  }
  return records;
};

/**
 * The record a `ReactionAdded` gives the author of the message (API.md §2.2.1): none for reacting to
 * one's own message, none when the author's level is `none`, they muted the conversation at that time
 * or left it. `actorId` is the reacting user and the preview is the reaction. The id names the message,
 * author, reactor and reaction, so taking a reaction back and adding it again makes no second record.
 */
export const reactionNotificationFor = (
  state: ConversationState,
  added: ChatEventOf<'ReactionAdded'>['data'],
  notificationIdFor: NotificationIdFor,
): NotificationRecord[] => {
  const recipientId = added.messageSenderId;
  if (recipientId === added.userId || !reachable(state, recipientId, Date.parse(added.at))) return [];
  const { conversationId, messageId, userId, reaction } = added;
  return [
    {
      notificationId: notificationIdFor(conversationId, messageId, recipientId, 'reaction', userId, reaction),
      recipientId,
      kind: 'reaction',
      conversationId,
      messageId,
      actorId: userId,
      preview: reaction,
      createdAt: added.at,
      readAt: null,
    },
  ];
};

/** The preview shown after an edit or a delete (a deleted message shows none; an erased editor's, null). */
export const previewAfter = (
  event: ChatEventOf<'MessageEdited'> | ChatEventOf<'MessageDeleted'>,
): string | null => {
  if (event.type === 'MessageDeleted') return '';
  return event.data.body === null ? null : preview(event.data.body);
};
