import { randomUUID } from 'node:crypto';

/** A new event as the event stores take it (`NewEvent` of @chat/eventstore), by `userId`. */
export type TestEvent = {
  id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: { userId: string; correlationId: string; causationId: null; schemaVersion: number };
};

/** An event of `type` with `data`, a fresh id and correlation id, written by `userId`. */
export const testEvent = (type: string, data: Record<string, unknown>, userId = 'alice'): TestEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { userId, correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
});

/** The data of a MessageSent of `body` in `conversationId` by `senderId`: a fresh message id, sent now. */
export const messageSentData = (conversationId: string, body: string, senderId = 'alice') => ({
  conversationId,
  messageId: randomUUID(),
  senderId,
  body,
  replyTo: null,
  sentAt: new Date().toISOString(),
});

/** A MessageSent of `body` in `conversationId` by `senderId` (and written by them). */
export const testMessageSent = (conversationId: string, body: string, senderId = 'alice'): TestEvent =>
  testEvent('MessageSent', messageSentData(conversationId, body, senderId), senderId);
