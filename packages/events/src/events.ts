import { z } from 'zod';

// Event data schemas: the public schema that analytics consumers replay (API.md §3). Fields may be
// added in later schema versions but never removed or renamed. Parsing is loose so that a reader on
// an older build keeps fields it does not know yet.

const id = z.string();
const time = z.string();

export const conversationKindSchema = z.enum(['direct', 'group']);
export type ConversationKind = z.infer<typeof conversationKindSchema>;

export const eventDataSchemas = {
  ConversationStarted: z.looseObject({
    conversationId: id,
    kind: conversationKindSchema,
    title: z.string().nullable(),
    createdBy: id,
    members: z.array(id),
  }),
  MemberJoined: z.looseObject({ conversationId: id, userId: id, addedBy: id }),
  MemberLeft: z.looseObject({ conversationId: id, userId: id, removedBy: id }),
  MessageSent: z.looseObject({
    conversationId: id,
    messageId: id,
    senderId: id,
    body: z.string(),
    replyTo: z.string().nullable(),
    sentAt: time,
  }),
  MessageEdited: z.looseObject({
    conversationId: id,
    messageId: id,
    editorId: id,
    body: z.string(),
    editedAt: time,
  }),
  MessageDeleted: z.looseObject({ conversationId: id, messageId: id, deletedBy: id, deletedAt: time }),
  ConversationRead: z.looseObject({
    conversationId: id,
    userId: id,
    upToSeq: z.number().int().min(0),
    readAt: time,
  }),
  TypingStarted: z.looseObject({ conversationId: id, userId: id, at: time }),
  ConversationMuted: z.looseObject({ conversationId: id, userId: id, until: z.string().nullable() }),
  NotificationsRead: z.looseObject({ userId: id, notificationIds: z.array(id).nullable(), upTo: time }),
} as const;

export type EventType = keyof typeof eventDataSchemas;
export const EVENT_TYPES = Object.keys(eventDataSchemas) as EventType[];
export type EventData<T extends EventType> = z.infer<(typeof eventDataSchemas)[T]>;

/** A domain event before it is stored: its type and data. */
export type ChatEvent = { [T in EventType]: { type: T; data: EventData<T> } }[EventType];
export type ChatEventOf<T extends EventType> = Extract<ChatEvent, { type: T }>;

export const CONVERSATION_EVENT_TYPES = [
  'ConversationStarted',
  'MemberJoined',
  'MemberLeft',
  'MessageSent',
  'MessageEdited',
  'MessageDeleted',
] as const satisfies readonly EventType[];
export type ConversationEventType = (typeof CONVERSATION_EVENT_TYPES)[number];
export type ConversationEvent = ChatEventOf<ConversationEventType>;

export const isEventType = (type: string): type is EventType => Object.hasOwn(eventDataSchemas, type);

/** Parses one event's data against its schema; throws a ZodError on a malformed stored event. */
export const parseEvent = (type: string, data: unknown): ChatEvent => {
  if (!isEventType(type)) throw new Error(`unknown event type ${type}`);
  return { type, data: eventDataSchemas[type].parse(data) } as ChatEvent;
};
