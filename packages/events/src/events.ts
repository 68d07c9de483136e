import { z } from 'zod';
import { codePointLength, instantSchema, seqSchema, userIdSchema, uuidOutputSchema } from './ids.js';
import { MODERATION_STREAM_CATEGORY, moderationEventSchemas } from './moderation.js';
import { STREAM_PREFIX, type StreamCategory } from './streams.js';
import { textSchema } from './text.js';

// Event data schemas: the public schema that analytics consumers replay (API.md §3). Fields may be
// added in later schema versions but never removed or renamed. Parsing is loose so that a reader on
// an older build keeps fields it does not know yet.
// Each field is as strict as the read models need (UUIDs, user ids, storable text, instants they can
// hold): the command-api checks every event against these before it appends, so an event a
// projection cannot apply is refused at the write path instead of stopping a consumer (API.md §2).

const id = uuidOutputSchema;
const user = userIdSchema;
const text = textSchema;
const time = instantSchema;

export const conversationKindSchema = z.enum(['direct', 'group']);
export type ConversationKind = z.infer<typeof conversationKindSchema>;

/** Which messages of a conversation notify a member (API.md §2.3, §2.4). */
export const notificationLevelSchema = z.enum(['all', 'mentions', 'none']);
export type NotificationLevel = z.infer<typeof notificationLevelSchema>;

/** A member's level until they set one: `all` in direct conversations, `mentions` in groups. */
export const defaultNotificationLevel = (kind: ConversationKind): NotificationLevel =>
  kind === 'direct' ? 'all' : 'mentions';

export const REACTION_MAX = 32;

/** A reaction (API.md §2.2.1): an emoji such as `👍` or a name such as `thumbsup`. */
export const reactionSchema = textSchema
  .refine((s) => s.length > 0 && codePointLength(s) <= REACTION_MAX, `must be 1..${REACTION_MAX} characters`)
  .refine((s) => !/\s/u.test(s), 'must not contain whitespace');

const reaction = {
  conversationId: id,
  messageId: id,
  userId: user,
  reaction: reactionSchema,
  at: time,
};

/**
 * Set on an event whose personal text was written by a user who has since been erased (crypto-shredded,
 * README "Erasure"): the text fields read as null. Never written: the read path adds it.
 */
const erased = z.literal(true).optional();

export const eventDataSchemas = {
  ConversationStarted: z.looseObject({
    conversationId: id,
    kind: conversationKindSchema,
    title: text.nullable(),
    erased,
    createdBy: user,
    members: z.array(user),
  }),
  MemberJoined: z.looseObject({ conversationId: id, userId: user, addedBy: user }),
  MemberLeft: z.looseObject({ conversationId: id, userId: user, removedBy: user }),
  MessageSent: z.looseObject({
    conversationId: id,
    messageId: id,
    senderId: user,
    /** null only with `erased` (the sender was erased). */
    body: text.nullable(),
    erased,
    replyTo: id.nullable(),
    sentAt: time,
    /**
     * The sender of the message `replyTo` names (v1.1; absent without `replyTo` and in older events),
     * so the notifier can tell a reply to someone's message without a table of every message's sender.
     */
    replyToSenderId: user.optional(),
    /**
     * The root message of the thread this message replies in (threads, v1.1; absent for a message of the
     * main timeline and in every older event, which therefore reads unchanged).
     */
    threadRootId: id.optional(),
    /**
     * The thread's participants before this reply — the root's author, then every earlier replier in the
     * order of their first reply — so the notifier reaches them without a table of every thread.
     * Present exactly when `threadRootId` is.
     */
    threadParticipantIds: z.array(user).optional(),
  }),
  MessageEdited: z.looseObject({
    conversationId: id,
    messageId: id,
    editorId: user,
    /** null only with `erased` (the editor was erased). */
    body: text.nullable(),
    erased,
    editedAt: time,
  }),
  MessageDeleted: z.looseObject({ conversationId: id, messageId: id, deletedBy: user, deletedAt: time }),
  /** `messageSenderId`: the author of the message (added field), whom the reaction notifies. */
  ReactionAdded: z.looseObject({ ...reaction, messageSenderId: user }),
  ReactionRemoved: z.looseObject(reaction),
  ConversationRead: z.looseObject({
    conversationId: id,
    userId: user,
    upToSeq: seqSchema,
    readAt: time,
  }),
  TypingStarted: z.looseObject({ conversationId: id, userId: user, at: time }),
  ConversationMuted: z.looseObject({ conversationId: id, userId: user, until: time.nullable() }),
  NotificationLevelSet: z.looseObject({ conversationId: id, userId: user, level: notificationLevelSchema }),
  NotificationsRead: z.looseObject({
    userId: user,
    notificationIds: z.array(id).nullable(),
    upTo: time,
  }),
  ...moderationEventSchemas,
  /**
   * An admin erased the user (`POST /v1/admin/users/{userId}/erase`): their data key is destroyed, so
   * every text they wrote reads as null with `erased: true`; read models drop their copies.
   */
  UserErased: z.looseObject({ userId: user, erasedBy: user, erasedAt: time }),
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
  'ReactionAdded',
  'ReactionRemoved',
  'MemberRoleChanged',
  'MemberBanned',
  'MemberUnbanned',
] as const satisfies readonly EventType[];
export type ConversationEventType = (typeof CONVERSATION_EVENT_TYPES)[number];
export type ConversationEvent = ChatEventOf<ConversationEventType>;

/** The stream each event type is appended to (API.md §3): `conversation-`, `receipts-` and `typing-`
 * streams are named by the event's `conversationId`, `user-` streams by its `userId`. */
export const EVENT_STREAM_CATEGORY = {
  ConversationStarted: 'conversation',
  MemberJoined: 'conversation',
  MemberLeft: 'conversation',
  MessageSent: 'conversation',
  MessageEdited: 'conversation',
  MessageDeleted: 'conversation',
  ReactionAdded: 'conversation',
  ReactionRemoved: 'conversation',
  ConversationRead: 'receipts',
  TypingStarted: 'typing',
  ConversationMuted: 'user',
  NotificationLevelSet: 'user',
  NotificationsRead: 'user',
  ...MODERATION_STREAM_CATEGORY,
  UserErased: 'user',
} as const satisfies Record<EventType, StreamCategory>;

/** The event types appended to streams of one category. */
export type EventTypeOfStream<C extends StreamCategory> = {
  [T in EventType]: (typeof EVENT_STREAM_CATEGORY)[T] extends C ? T : never;
}[EventType];

/** Narrows an event to those of one stream category (a fold over that stream switches over these). */
export const isEventOfStream = <C extends StreamCategory>(
  event: ChatEvent,
  category: C,
): event is ChatEventOf<EventTypeOfStream<C>> => EVENT_STREAM_CATEGORY[event.type] === category;

/** The id of the stream `event` is appended to. */
export const streamIdOf = (event: ChatEvent): string => {
  const category = EVENT_STREAM_CATEGORY[event.type];
  const data: Partial<Record<'conversationId' | 'userId' | 'reportId', string>> = event.data;
  const key = category === 'user' ? data.userId : category === 'report' ? data.reportId : data.conversationId;
  if (key === undefined) throw new Error(`${event.type} names no ${category} stream`);
  return `${STREAM_PREFIX[category]}${key}`;
};

export const isEventType = (type: string): type is EventType => Object.hasOwn(eventDataSchemas, type);

/** Parses one event's data against its schema; throws a ZodError on a malformed stored event. */
export const parseEvent = (type: string, data: unknown): ChatEvent => {
  if (!isEventType(type)) throw new Error(`unknown event type ${type}`);
  return { type, data: eventDataSchemas[type].parse(data) } as ChatEvent;
};

/** The issues that would make `event` unreadable by consumers, or none (the write path's last check). */
export const eventIssues = (event: ChatEvent): z.core.$ZodIssue[] => {
  const result = eventDataSchemas[event.type].safeParse(event.data);
  return result.success ? [] : result.error.issues;
};

/**
 * The personal text of each event type (README "Erasure"): the field, and the field naming the user who
 * wrote it, whose data key encrypts it in the log. Every other field (ids, times, kinds, reactions)
 * stays in clear.
 */
export const PERSONAL_FIELDS: Partial<Record<EventType, readonly { field: string; author: string }[]>> = {
  ConversationStarted: [{ field: 'title', author: 'createdBy' }],
  MessageSent: [{ field: 'body', author: 'senderId' }],
  MessageEdited: [{ field: 'body', author: 'editorId' }],
};
