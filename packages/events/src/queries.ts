import { z } from 'zod';
import { userIdSchema } from './ids.js';

// Query-string schemas (API.md §2.4-2.5). Query values arrive as strings, hence the coercions.

const intParam = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const minPosition = z
  .string()
  .regex(/^[0-9a-f]{32}$/i, 'must be a position returned by the server')
  .transform((s) => s.toLowerCase())
  .optional();

export const listConversationsQuery = z.strictObject({
  limit: intParam(1, 100).default(50),
  cursor: z.string().max(512).optional(),
  minPosition,
});

export const listMessagesQuery = z
  .strictObject({
    before: intParam(0, Number.MAX_SAFE_INTEGER).optional(),
    after: intParam(0, Number.MAX_SAFE_INTEGER).optional(),
    limit: intParam(1, 200).default(50),
    minPosition,
  })
  .refine((q) => q.before === undefined || q.after === undefined, {
    message: 'use either before or after, not both',
    path: ['before'],
  });

export const getConversationQuery = z.strictObject({ minPosition });
export const unreadQuery = z.strictObject({ minPosition });

export const listNotificationsQuery = z.strictObject({
  unreadOnly: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .default(false),
  limit: intParam(1, 100).default(50),
  cursor: z.string().max(512).optional(),
  minPosition,
});

export const presenceQuery = z.strictObject({
  userIds: z
    .string()
    .transform((s) => s.split(',').filter((x) => x.length > 0))
    .pipe(z.array(userIdSchema).min(1).max(100)),
  minPosition,
});

export const adminStreamParams = z.strictObject({ streamId: z.string().min(1).max(200) });
export const adminStreamQuery = z.strictObject({
  fromRevision: intParam(0, Number.MAX_SAFE_INTEGER).default(0),
  limit: intParam(1, 1000).default(100),
});

// Read-model shapes returned by the queries.
export type LastMessage = {
  messageId: string;
  senderId: string;
  preview: string;
  sentAt: string;
  seq: number;
  deleted: boolean;
};

export type Conversation = {
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
  lastMessage: LastMessage | null;
};

export type Message = {
  messageId: string;
  conversationId: string;
  seq: number;
  senderId: string;
  body: string | null;
  replyTo: string | null;
  sentAt: string;
  editedAt: string | null;
  deleted: boolean;
};

export type Notification = {
  notificationId: string;
  kind: 'message' | 'mention';
  conversationId: string;
  messageId: string;
  actorId: string;
  preview: string;
  createdAt: string;
  readAt: string | null;
};

export type PresenceStatus = 'online' | 'offline' | 'unknown';
export type UserPresence = { userId: string; status: PresenceStatus; lastSeenAt: string | null };
