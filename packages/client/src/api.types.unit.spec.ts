import type { ServerFrameOf } from '@chat/events';
import { describe, expectTypeOf, it } from 'vitest';
import type { ChatApi } from './http.js';
import type { MessageReaction, NotificationLevel } from './index.js';

// The SDK's types against the contract as API.md writes it. The SDK takes every type from the zod
// schemas of @chat/events, so a schema change that breaks clients (a field renamed, removed, retyped or
// newly required) fails here — at type-check time (`pnpm check`, and `npm test`, which type-checks
// *.types.unit.spec.ts files). Added optional input fields and added result fields are compatible.

type Result<M extends keyof ChatApi> = ChatApi[M] extends (...args: never[]) => Promise<infer R> ? R : never;
type Arg<M extends keyof ChatApi, I extends number> = ChatApi[M] extends (...args: infer A) => unknown
  ? A[I]
  : never;

type SeqPosition = { seq: number; position: string };
type Conversation = {
  conversationId: string;
  kind: 'direct' | 'group';
  title: string | null;
  createdBy: string;
  members: string[];
  createdAt: string;
  lastActivityAt: string;
  lastSeq: number;
  readSeq: number;
  unreadCount: number;
  mutedUntil: string | null;
  lastMessage: null | {
    messageId: string;
    senderId: string;
    preview: string | null;
    sentAt: string;
    seq: number;
    deleted: boolean;
    erased: boolean;
  };
};
type Message = {
  messageId: string;
  conversationId: string;
  seq: number;
  senderId: string;
  body: string | null;
  erased: boolean;
  replyTo: string | null;
  sentAt: string;
  editedAt: string | null;
  deleted: boolean;
};
type Notification = {
  notificationId: string;
  kind: 'message' | 'mention' | 'reply' | 'reaction' | 'thread';
  conversationId: string;
  messageId: string;
  actorId: string;
  preview: string | null;
  erased: boolean;
  createdAt: string;
  readAt: string | null;
};

describe('SDK types follow API.md', () => {
  it('conversations (§2.1)', () => {
    expectTypeOf<{ kind: 'direct'; members: string[] }>().toExtend<Arg<'createConversation', 0>>();
    expectTypeOf<{
      conversationId: string;
      kind: 'group';
      members: string[];
      title: string;
    }>().toExtend<Arg<'createConversation', 0>>();
    expectTypeOf<Result<'createConversation'>>().toExtend<{
      conversationId: string;
      seq: number;
      position: string;
    }>();
    expectTypeOf<Result<'addMember'>>().toExtend<SeqPosition>();
    expectTypeOf<Result<'removeMember'>>().toExtend<SeqPosition>();
  });

  it('messages and reactions (§2.2, §2.2.1)', () => {
    expectTypeOf<{ body: string }>().toExtend<Arg<'sendMessage', 1>>();
    expectTypeOf<{ body: string; replyTo: string; messageId: string }>().toExtend<Arg<'sendMessage', 1>>();
    expectTypeOf<Result<'sendMessage'>>().toExtend<{
      messageId: string;
      conversationId: string;
      seq: number;
      sentAt: string;
      position: string;
    }>();
    expectTypeOf<Result<'editMessage'>>().toExtend<SeqPosition>();
    expectTypeOf<Result<'deleteMessage'>>().toExtend<SeqPosition>();
    expectTypeOf<Result<'addReaction'>>().toExtend<SeqPosition>();
    expectTypeOf<Result<'removeReaction'>>().toExtend<SeqPosition>();
    expectTypeOf<MessageReaction>().toExtend<{ reaction: string; count: number; userIds: string[] }>();
  });

  it('read state, typing, mute, notification level (§2.3)', () => {
    expectTypeOf<Result<'markRead'>>().toExtend<{ readSeq: number; position?: string }>();
    expectTypeOf<Result<'typing'>>().toExtend<{ throttled: boolean }>();
    expectTypeOf<Result<'mute'>>().toExtend<{ position: string }>();
    expectTypeOf<'all' | 'mentions' | 'none'>().toExtend<NotificationLevel>();
    expectTypeOf<Result<'setNotificationLevel'>>().toExtend<{ position: string }>();
  });

  it('queries (§2.4)', () => {
    expectTypeOf<{ limit: number; cursor: string }>().toExtend<Arg<'listConversations', 0>>();
    expectTypeOf<Result<'listConversations'>>().toExtend<{
      items: Conversation[];
      nextCursor: string | null;
    }>();
    expectTypeOf<Result<'allConversations'>>().toExtend<Conversation[]>();
    expectTypeOf<Result<'getConversation'>>().toExtend<Conversation>();
    expectTypeOf<{ before: number; limit: number }>().toExtend<Arg<'listMessages', 1>>();
    expectTypeOf<{ after: number }>().toExtend<Arg<'listMessages', 1>>();
    expectTypeOf<Result<'listMessages'>>().toExtend<{ items: Message[]; hasMore: boolean }>();
    expectTypeOf<Result<'unread'>>().toExtend<{ total: number; conversations: number }>();
    expectTypeOf<{ unreadOnly: boolean; limit: number; cursor: string }>().toExtend<
      Arg<'listNotifications', 0>
    >();
    expectTypeOf<Result<'listNotifications'>>().toExtend<{
      items: Notification[];
      nextCursor: string | null;
    }>();
    expectTypeOf<{ notificationIds: string[] }>().toExtend<Arg<'readNotifications', 0>>();
    expectTypeOf<'all'>().toExtend<Arg<'readNotifications', 0>>();
    expectTypeOf<Result<'readNotifications'>>().toExtend<{ updated: number; position: string }>();
    expectTypeOf<string[]>().toExtend<Arg<'presence', 0>>();
    expectTypeOf<Result<'presence'>>().toExtend<{
      users: { userId: string; status: 'online' | 'offline' | 'unknown'; lastSeenAt: string | null }[];
    }>();
    expectTypeOf<{ minPosition: string }>().toExtend<Arg<'getConversation', 1>>();
  });

  it('admin (§2.5) and the development token', () => {
    expectTypeOf<{ fromRevision: number; limit: number }>().toExtend<Arg<'adminStream', 1>>();
    expectTypeOf<Result<'eraseUser'>>().toExtend<{ userId: string; erasedAt: string; position: string }>();
    expectTypeOf<Result<'adminStream'>>().toExtend<{
      events: { id: string; type: string; streamId: string; revision: number; position: string }[];
    }>();
    expectTypeOf<Result<'devToken'>>().toExtend<{ token: string; userId: string; expiresAt: string }>();
  });

  it('WebSocket frames the SDK hands to the app (§4)', () => {
    expectTypeOf<ServerFrameOf<'unread'>>().toExtend<{
      conversationId: string;
      unreadCount: number;
      total: number;
    }>();
    expectTypeOf<ServerFrameOf<'receipt'>>().toExtend<{
      conversationId: string;
      userId: string;
      readSeq: number;
      at: string;
    }>();
    expectTypeOf<ServerFrameOf<'event'>>().toExtend<{ conversationId: string; seq: number }>();
    expectTypeOf<ServerFrameOf<'presence'>>().toExtend<{ userId: string; status: 'online' | 'offline' }>();
  });
});
