import type { ChatEventOf } from '@chat/events';
import { mentions, preview } from '@chat/events';
import type { ConversationState } from './conversation.js';

export type NotificationKind = 'message' | 'mention';

/** One notification record as the notifier stores it. */
export type NotificationRecord = {
  notificationId: string;
  recipientId: string;
  kind: NotificationKind;
  conversationId: string;
  messageId: string;
  actorId: string;
  preview: string;
  /** The message's `sentAt`: deterministic, so a rebuild reproduces it. */
  createdAt: string;
  readAt: string | null;
};

export type NotificationRules = {
  /** Groups with more members than this (sender included) notify mentions only. */
  notifyAllMaxMembers: number;
  /** Deterministic id from the message and the recipient. */
  notificationIdFor: (conversationId: string, messageId: string, recipientId: string) => string;
};

/**
 * The records one `MessageSent` produces: one per member except the sender, none for a member who
 * has the conversation muted at `sentAt`, and in large groups only for mentioned members. The cost
 * in a large group is one scan of the member set, and none at all when the body has no `@`.
 */
export const notificationsFor = (
  state: ConversationState,
  sent: ChatEventOf<'MessageSent'>['data'],
  rules: NotificationRules,
): NotificationRecord[] => {
  const mentionsOnly = state.members.size > rules.notifyAllMaxMembers;
  if (mentionsOnly && !sent.body.includes('@')) return [];
  const sentAt = Date.parse(sent.sentAt);
  const text = preview(sent.body);
  const records: NotificationRecord[] = [];
  for (const recipientId of state.members) {
    if (recipientId === sent.senderId) continue;
    const mutedUntil = state.mutes.get(recipientId);
    if (mutedUntil !== undefined && mutedUntil > sentAt) continue;
    const mentioned = mentions(sent.body, recipientId);
    if (mentionsOnly && !mentioned) continue;
    records.push({
      notificationId: rules.notificationIdFor(sent.conversationId, sent.messageId, recipientId),
      recipientId,
      kind: mentioned ? 'mention' : 'message',
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

/** The preview shown after an edit or a delete (a deleted message shows none). */
export const previewAfter = (event: ChatEventOf<'MessageEdited'> | ChatEventOf<'MessageDeleted'>): string =>
  event.type === 'MessageEdited' ? preview(event.data.body) : '';
