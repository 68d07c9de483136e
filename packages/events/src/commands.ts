import { z } from 'zod';
import { conversationKindSchema } from './events.js';
import { isoTimeSchema, userIdSchema, uuidSchema } from './ids.js';
import { messageBodySchema, titleSchema } from './text.js';

// Request bodies of the command API (API.md §2.1-2.3). Objects are strict: an unknown field is a
// validation error rather than silently dropped, so a client typo never looks like success.

export const MAX_CONVERSATION_MEMBERS = 1000;

export const createConversationBody = z.strictObject({
  conversationId: uuidSchema.optional(),
  kind: conversationKindSchema,
  members: z.array(userIdSchema).min(1).max(MAX_CONVERSATION_MEMBERS),
  title: titleSchema.optional(),
});
export type CreateConversationBody = z.infer<typeof createConversationBody>;

export const addMemberBody = z.strictObject({ userId: userIdSchema });
export type AddMemberBody = z.infer<typeof addMemberBody>;

export const sendMessageBody = z.strictObject({
  messageId: uuidSchema,
  body: messageBodySchema,
  replyTo: uuidSchema.optional(),
});
export type SendMessageBody = z.infer<typeof sendMessageBody>;

export const editMessageBody = z.strictObject({ body: messageBodySchema });
export type EditMessageBody = z.infer<typeof editMessageBody>;

export const markReadBody = z.strictObject({ upToSeq: z.number().int().min(0) });
export type MarkReadBody = z.infer<typeof markReadBody>;

export const typingBody = z.strictObject({});

export const muteBody = z.strictObject({ until: isoTimeSchema.nullable() });
export type MuteBody = z.infer<typeof muteBody>;

export const readNotificationsBody = z.union([
  z.strictObject({ notificationIds: z.array(uuidSchema).min(1).max(1000) }),
  z.strictObject({ all: z.literal(true) }),
]);
export type ReadNotificationsBody = z.infer<typeof readNotificationsBody>;

export const conversationParams = z.strictObject({ id: uuidSchema });
export const memberParams = z.strictObject({ id: uuidSchema, userId: userIdSchema });
export const messageParams = z.strictObject({ id: uuidSchema, messageId: uuidSchema });

// Command results: the HTTP response bodies, also the `result` of a WS `ack`.
export type CreateConversationResult = { conversationId: string; seq: number; position: string };
export type MembershipResult = { seq: number; position: string };
export type SendMessageResult = {
  messageId: string;
  conversationId: string;
  seq: number;
  sentAt: string;
  position: string;
};
export type MessageChangeResult = { seq: number; position: string };
export type MarkReadResult = { readSeq: number; position?: string };
export type TypingResult = { throttled: boolean };
export type MuteResult = { position: string };
export type ReadNotificationsResult = { updated: number; position: string };
