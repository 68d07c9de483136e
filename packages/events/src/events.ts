import { z } from 'zod';
import { codePointLength, instantSchema, seqSchema, userIdSchema, uuidOutputSchema } from './ids.js';
import { moderationEvents } from './moderation.js';
import { STREAM_PREFIX, type StreamCategory } from './streams.js';
import { textSchema } from './text.js';
import type { EventDefinition, TraitKey, TraitValue, UnreadEffect } from './traits.js';

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

/**
 * Every event type, defined once: its data schema and what the rest of the system does with it (see
 * `EventTraits`). A new event type is one entry here (or in moderation.ts); every mapping below, the
 * relay's routing and the SDK's unread counts follow from it, and every fold and decider that switches
 * over event types fails to compile until it handles the new one.
 */
export const eventDefinitions = {
  ConversationStarted: {
    data: z.looseObject({
      conversationId: id,
      kind: conversationKindSchema,
      title: text.nullable(),
      erased,
      createdBy: user,
      members: z.array(user),
    }),
    stream: 'conversation',
    relay: 'membership',
    unread: 'joins',
  },
  MemberJoined: {
    data: z.looseObject({ conversationId: id, userId: user, addedBy: user }),
    stream: 'conversation',
    relay: 'membership',
    unread: 'joins',
  },
  MemberLeft: {
    data: z.looseObject({ conversationId: id, userId: user, removedBy: user }),
    stream: 'conversation',
    relay: 'membership',
    unread: 'leaves',
  },
  MessageSent: {
    data: z.looseObject({
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
       * The root message of the thread this message replies in (threads, v1.1; absent for a message of
       * the main timeline and in every older event, which therefore reads unchanged).
       */
      threadRootId: id.optional(),
      /**
       * The thread's participants before this reply — the root's author, then every earlier replier in
       * the order of their first reply — so the notifier reaches them without a table of every thread.
       * Present exactly when `threadRootId` is.
       */
      threadParticipantIds: z.array(user).optional(),
    }),
    stream: 'conversation',
    relay: 'conversation',
    unread: 'counts',
  },
  MessageEdited: {
    data: z.looseObject({
      conversationId: id,
      messageId: id,
      editorId: user,
      /** null only with `erased` (the editor was erased). */
      body: text.nullable(),
      erased,
      editedAt: time,
    }),
    stream: 'conversation',
    relay: 'conversation',
    unread: 'none',
  },
  /** A deleted unread message lowers the count through the `unread` frame that follows it (API.md §4). */
  MessageDeleted: {
    data: z.looseObject({ conversationId: id, messageId: id, deletedBy: user, deletedAt: time }),
    stream: 'conversation',
    relay: 'conversation',
    unread: 'none',
  },
  /** `messageSenderId`: the author of the message (added field), whom the reaction notifies. */
  ReactionAdded: {
    data: z.looseObject({ ...reaction, messageSenderId: user }),
    stream: 'conversation',
    relay: 'conversation',
    unread: 'none',
  },
  ReactionRemoved: {
    data: z.looseObject(reaction),
    stream: 'conversation',
    relay: 'conversation',
    unread: 'none',
  },
  /** Reaches sockets as a `receipt` frame; the watermark it moves is the SDK's from that frame. */
  ConversationRead: {
    data: z.looseObject({ conversationId: id, userId: user, upToSeq: seqSchema, readAt: time }),
    stream: 'receipts',
    relay: 'conversation',
  },
  TypingStarted: {
    data: z.looseObject({ conversationId: id, userId: user, at: time }),
    stream: 'typing',
    relay: 'conversation',
  },
  ConversationMuted: {
    data: z.looseObject({ conversationId: id, userId: user, until: time.nullable() }),
    stream: 'user',
    relay: 'none',
  },
  NotificationLevelSet: {
    data: z.looseObject({ conversationId: id, userId: user, level: notificationLevelSchema }),
    stream: 'user',
    relay: 'none',
  },
  NotificationsRead: {
    data: z.looseObject({ userId: user, notificationIds: z.array(id).nullable(), upTo: time }),
    stream: 'user',
    relay: 'none',
  },
  ...moderationEvents,
  /**
   * An admin erased the user (`POST /v1/admin/users/{userId}/erase`): their data key is destroyed, so
   * every text they wrote reads as null with `erased: true`; read models drop their copies.
   */
  UserErased: {
    data: z.looseObject({ userId: user, erasedBy: user, erasedAt: time }),
    stream: 'user',
    relay: 'none',
  },
} as const satisfies Record<string, EventDefinition>;

type EventDefinitions = typeof eventDefinitions;
export type EventType = keyof EventDefinitions;
export const EVENT_TYPES = Object.keys(eventDefinitions) as EventType[];

/** One trait of every event type, by type (a mapping over `eventDefinitions`). */
const traitOfEach = <K extends keyof EventDefinition>(key: K) =>
  Object.fromEntries(EVENT_TYPES.map((type) => [type, eventDefinitions[type][key]])) as {
    readonly [T in EventType]: EventDefinitions[T][K];
  };

export const eventDataSchemas = traitOfEach('data');
export type EventData<T extends EventType> = z.infer<(typeof eventDataSchemas)[T]>;

/** A domain event before it is stored: its type and data. */
export type ChatEvent = { [T in EventType]: { type: T; data: EventData<T> } }[EventType];
export type ChatEventOf<T extends EventType> = Extract<ChatEvent, { type: T }>;

/** The event types whose trait `K` is `V` (types without trait `K` are none of them). */
export type EventTypeWith<K extends TraitKey, V> = {
  [T in EventType]: EventDefinitions[T] extends { readonly [P in K]: infer X }
    ? X extends V
      ? T
      : never
    : never;
}[EventType];

/** The stream each event type is appended to (API.md §3): `conversation-`, `receipts-` and `typing-`
 * streams are named by the event's `conversationId`, `user-` streams by its `userId`. */
export const EVENT_STREAM_CATEGORY = traitOfEach('stream');

/** The event types appended to streams of one category. */
export type EventTypeOfStream<C extends StreamCategory> = EventTypeWith<'stream', C>;

export type ConversationEventType = EventTypeOfStream<'conversation'>;
export type ConversationEvent = ChatEventOf<ConversationEventType>;
export const CONVERSATION_EVENT_TYPES: readonly ConversationEventType[] = EVENT_TYPES.filter(
  (type): type is ConversationEventType => EVENT_STREAM_CATEGORY[type] === 'conversation',
);

/**
 * Narrows an event to the types whose trait `key` is `value` (`hasTrait(event, 'relay', 'block')`).
 * False for a type this build does not know: a client may get events of a later contract version.
 */
export const hasTrait = <K extends TraitKey, V extends TraitValue<K>>(
  event: ChatEvent,
  key: K,
  value: V,
): event is ChatEventOf<EventTypeWith<K, V>> => {
  const traits: Partial<Record<TraitKey, unknown>> | undefined = isEventType(event.type)
    ? eventDefinitions[event.type]
    : undefined;
  return traits?.[key] === value;
};

/** The `unread` trait of an event type; `none` for the types without one and those this build does not know. */
export const unreadEffectOf = (type: string): UnreadEffect => {
  if (!isEventType(type)) return 'none';
  const definition: EventDefinition = eventDefinitions[type];
  return 'unread' in definition ? definition.unread : 'none';
};

/** Narrows an event to those of one stream category (a fold over that stream switches over these). */
export const isEventOfStream = <C extends StreamCategory>(
  event: ChatEvent,
  category: C,
): event is ChatEventOf<EventTypeOfStream<C>> => hasTrait(event, 'stream', category);

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

/** One event's data parsed against its schema, or null for an unknown type or malformed data. */
export const safeParseEvent = (type: string, data: unknown): ChatEvent | null => {
  if (!isEventType(type)) return null;
  const parsed = eventDataSchemas[type].safeParse(data);
  return parsed.success ? ({ type, data: parsed.data } as ChatEvent) : null;
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
