import { z } from 'zod';
import { conversationParams, noParams } from './commands.js';
import { envelopeSchema } from './envelope.js';
import type { ErrorCode } from './errors.js';
import { conversationKindSchema, EVENT_TYPES, notificationLevelSchema } from './events.js';
import { instantSchema, isInstant, MAX_SEQ, seqSchema, userIdSchema, uuidOutputSchema } from './ids.js';
import type { RouteShape } from './routes.js';
import { textSchema } from './text.js';

// The queries of API.md §2.4-2.5: query strings, results and routes, each defined once.

/**
 * A query-string integer: decimal digits only (no sign, exponent or empty value, which a numeric
 * coercion would read as 0 or Infinity), within its range.
 */
export const intParam = (min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,16}$/, 'must be a decimal integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

/** `true` or `false`, nothing else. */
export const booleanParam = z.enum(['true', 'false']).transform((v) => v === 'true');

export const minPosition = z
  .string()
  .regex(/^[0-9a-f]{32}$/i, 'must be a position returned by the server')
  .transform((s) => s.toLowerCase())
  .optional();

const LOWER_UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A page cursor's content: the last item's time and id. Opaque to clients. */
export type PageCursor = { at: string; id: string };

/** base64url of the JSON `[at, id]`: the one cursor format of every list. */
export const encodePageCursor = (cursor: PageCursor): string => {
  const bytes = new TextEncoder().encode(JSON.stringify([cursor.at, cursor.id]));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-')
    .replace(/\//g, '_')
    .replace(/=+$/, '');
};

/** The cursor's content, or null when the server did not make it (so it never reaches a query). */
export const decodePageCursor = (raw: string): PageCursor | null => {
  if (!/^[A-Za-z0-9_-]{1,512}$/.test(raw) || raw.length % 4 === 1) return null;
  try {
    const binary = atob(raw.replace(/-/g, '+').replace(/_/g, '/'));
    const text = new TextDecoder('utf-8', { fatal: true }).decode(
      Uint8Array.from(binary, (c) => c.charCodeAt(0)),
    );
    const value: unknown = JSON.parse(text);
    if (!Array.isArray(value) || value.length !== 2) return null;
    const [at, id] = value as unknown[];
    if (typeof at !== 'string' || typeof id !== 'string') return null;
    return isInstant(at) && LOWER_UUID_RE.test(id) ? { at, id } : null;
  } catch {
    return null;
  }
};

/** A cursor the server handed out; anything else answers 400 (API.md §2: a forged cursor). */
export const pageCursorSchema = textSchema.refine(
  (raw) => decodePageCursor(raw) !== null,
  'not a cursor returned by the server',
);

export const listConversationsQuery = z.strictObject({
  limit: intParam(1, 100).default(50),
  cursor: pageCursorSchema.optional(),
  minPosition,
});

export const listMessagesQuery = z
  .strictObject({
    before: intParam(0, MAX_SEQ).optional(),
    after: intParam(0, MAX_SEQ).optional(),
    limit: intParam(1, 200).default(50),
    /** `false` leaves thread replies out of the main timeline (default: every message, as before threads). */
    includeThreads: booleanParam.default(true),
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
  cursor: pageCursorSchema.optional(),
  minPosition,
});

export const presenceQuery = z.strictObject({
  userIds: z
    .string()
    .transform((s) => s.split(',').filter((x) => x.length > 0))
    .pipe(z.array(userIdSchema).min(1).max(100)),
  minPosition,
});

export const adminStreamParams = z.strictObject({ streamId: textSchema.min(1).max(200) });
export const adminStreamQuery = z.strictObject({
  fromRevision: intParam(0, MAX_SEQ).default(0),
  limit: intParam(1, 1000).default(100),
});

/** Largest page of the export (API.md §2.5 extension): 10,000 events. */
export const EXPORT_PAGE_MAX = 10_000;

/** The media type of the streamed export: one envelope per line, as `chatctl replay` writes them. */
export const NDJSON_MEDIA_TYPE = 'application/x-ndjson';

/**
 * The export's query string. `from` is exclusive (events strictly after it; absent = the start of the
 * log), so a reader resumes by passing back the last position it has, `nextPosition` of a page.
 */
export const exportEventsQuery = z.strictObject({
  from: z
    .string()
    .regex(/^[0-9a-f]{32}$/i, 'must be a position returned by the server')
    .transform((s) => s.toLowerCase())
    .optional(),
  types: z
    .string()
    .transform((s) => s.split(',').filter((x) => x.length > 0))
    .pipe(
      z
        .array(
          z.enum(EVENT_TYPES as [string, ...string[]], {
            message: `must be one of ${EVENT_TYPES.join(', ')}`,
          }),
        )
        .min(1)
        .max(EVENT_TYPES.length),
    )
    .optional(),
  streamPrefix: textSchema.min(1).max(200).optional(),
  limit: intParam(1, EXPORT_PAGE_MAX).default(1000),
  follow: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .default(false),
});
export type ExportEventsQuery = z.output<typeof exportEventsQuery>;

// Read-model shapes returned by the queries.
const count = z.number().int().min(0);

export const lastMessageSchema = z.object({
  messageId: uuidOutputSchema,
  senderId: userIdSchema,
  /** ≤ 200 code points; "" when deleted; null when its sender was erased. */
  preview: z.string().nullable(),
  sentAt: instantSchema,
  seq: seqSchema,
  deleted: z.boolean(),
  /** Its sender was erased (README "Erasure"): the preview is null. */
  erased: z.boolean(),
});
export type LastMessage = z.output<typeof lastMessageSchema>;

export const conversationSchema = z.object({
  conversationId: uuidOutputSchema,
  kind: conversationKindSchema,
  title: z.string().nullable(),
  createdBy: userIdSchema,
  members: z.array(userIdSchema),
  createdAt: instantSchema,
  lastActivityAt: instantSchema,
  lastSeq: seqSchema,
  readSeq: seqSchema,
  unreadCount: count,
  mutedUntil: instantSchema.nullable(),
  /** The caller's level here: the one they set, else the default by kind (API.md §2.3). */
  notificationLevel: notificationLevelSchema,
  lastMessage: lastMessageSchema.nullable(),
  /**
   * v1.2 (always sent by this server). Roles (issue 16): the members the owner made admins; the owner is `createdBy`, everyone else in
   * `members` is a member.
   */
  admins: z.array(userIdSchema).optional(),
});
export type Conversation = z.output<typeof conversationSchema>;

/** How many users a reaction lists by id (the first to react). */
export const REACTION_USERS_SHOWN = 20;

/** How many recent thread participants a root message lists. */
export const THREAD_PARTICIPANTS_SHOWN = 3;

export const reactionSummarySchema = z.object({
  reaction: z.string(),
  count: count.min(1),
  /** The first REACTION_USERS_SHOWN users who reacted so, in the order they did. */
  userIds: z.array(userIdSchema).max(REACTION_USERS_SHOWN),
});
export type ReactionSummary = z.output<typeof reactionSummarySchema>;

export const messageSchema = z.object({
  messageId: uuidOutputSchema,
  conversationId: uuidOutputSchema,
  seq: seqSchema,
  senderId: userIdSchema,
  /** null when deleted, or when its sender was erased (`erased`). */
  body: z.string().nullable(),
  /** Its sender was erased (README "Erasure"): the body reads as null. */
  erased: z.boolean(),
  replyTo: uuidOutputSchema.nullable(),
  sentAt: instantSchema,
  editedAt: instantSchema.nullable(),
  deleted: z.boolean(),
  /** v1.2 (always sent by this server). Who deleted it: the sender, or a moderator (the owner, an admin, or a platform admin); null if not deleted. */
  deletedBy: userIdSchema.nullable().optional(),
  /**
   * Ordered by first use (the earliest add among the users who have the reaction now); `[]` when none,
   * and for a deleted message.
   */
  reactions: z.array(reactionSummarySchema),
  /** The root message of the thread this message replies in; null on the main timeline. */
  threadRootId: uuidOutputSchema.nullable(),
  /** Replies in this message's thread, deleted ones (tombstones) included; 0 when it has none. */
  replyCount: count,
  /** `sentAt` of the thread's newest reply; null without replies. */
  lastReplyAt: instantSchema.nullable(),
  /** The THREAD_PARTICIPANTS_SHOWN users who replied most recently, newest first. */
  threadParticipantIds: z.array(userIdSchema),
});
export type Message = z.output<typeof messageSchema>;

export const notificationKindSchema = z.enum(['message', 'mention', 'reply', 'reaction', 'thread']);
export type NotificationKind = z.output<typeof notificationKindSchema>;

export const notificationSchema = z.object({
  notificationId: uuidOutputSchema,
  kind: notificationKindSchema,
  conversationId: uuidOutputSchema,
  messageId: uuidOutputSchema,
  actorId: userIdSchema,
  /** null when the actor was erased (`erased`). */
  preview: z.string().nullable(),
  /** The text it previews was written by a user since erased (README "Erasure"): the preview is null. */
  erased: z.boolean(),
  createdAt: instantSchema,
  readAt: instantSchema.nullable(),
});
export type Notification = z.output<typeof notificationSchema>;

export const presenceStatusSchema = z.enum(['online', 'offline', 'unknown']);
export type PresenceStatus = z.output<typeof presenceStatusSchema>;
export const userPresenceSchema = z.object({
  userId: userIdSchema,
  status: presenceStatusSchema,
  /** When the user's last socket closed; null while online or never seen. */
  lastSeenAt: instantSchema.nullable(),
});
export type UserPresence = z.output<typeof userPresenceSchema>;

export const conversationPageSchema = z.object({
  items: z.array(conversationSchema),
  nextCursor: z.string().nullable(),
});
export const messagePageSchema = z.object({ items: z.array(messageSchema), hasMore: z.boolean() });
export const unreadSummarySchema = z.object({ total: count, conversations: count });
export const notificationPageSchema = z.object({
  items: z.array(notificationSchema),
  nextCursor: z.string().nullable(),
});
export const presenceResultSchema = z.object({ users: z.array(userPresenceSchema) });
/** Raw stored events, whatever their metadata (the admin read shows the log as it is). */
export const streamEventsSchema = z.object({
  events: z.array(envelopeSchema.extend({ metadata: z.record(z.string(), z.unknown()) })),
});

/** A page of the global log: the events (upcast to the current schema) and where the next page starts. */
/** One exported event: the envelope of API.md §3 (one line of the NDJSON export). */
export const exportedEventSchema = envelopeSchema.extend({ metadata: z.record(z.string(), z.unknown()) });

export const exportPageSchema = z.object({
  events: z.array(exportedEventSchema),
  /** Pass as `from` for the next page: the last event's position, or `from` when the page is empty. */
  nextPosition: z.string(),
});

/** Every query may fail these ways (every route is rate limited); conversation queries also `not_found`. */
export const QUERY_ERRORS = [
  'validation_failed',
  'unauthorized',
  'rate_limited',
  'unavailable',
] as const satisfies readonly ErrorCode[];

/** What `minPosition` does, said in the summary of every query that takes it. */
export const STALE_NOTE =
  'With minPosition, waits up to 2 s for the read model to reach it; then answers with X-Read-Model-Stale: true.';
const stale = STALE_NOTE;

/** Every query route (API.md §2.4-2.5). */
export const queryShapes = {
  listConversations: {
    name: 'listConversations',
    method: 'GET',
    path: '/v1/conversations',
    summary: `Your conversations, most recent activity first. ${stale}`,
    tags: ['queries'],
    params: noParams,
    querystring: listConversationsQuery,
    responses: { 200: conversationPageSchema.describe('a page of conversations') },
    errors: QUERY_ERRORS,
  },
  getConversation: {
    name: 'getConversation',
    method: 'GET',
    path: '/v1/conversations/:conversationId',
    summary: `One conversation as you see it. ${stale}`,
    tags: ['queries'],
    params: conversationParams,
    querystring: getConversationQuery,
    responses: { 200: conversationSchema.describe('the conversation') },
    errors: [...QUERY_ERRORS, 'not_found'],
  },
  listMessages: {
    name: 'listMessages',
    method: 'GET',
    path: '/v1/conversations/:conversationId/messages',
    summary: `A page of messages in ascending seq (before/after paging). ${stale}`,
    tags: ['queries'],
    params: conversationParams,
    querystring: listMessagesQuery,
    responses: { 200: messagePageSchema.describe('a page of messages') },
    errors: [...QUERY_ERRORS, 'not_found'],
  },
  unread: {
    name: 'unread',
    method: 'GET',
    path: '/v1/unread',
    summary: `Your total unread count and how many conversations have unread messages. ${stale}`,
    tags: ['queries'],
    params: noParams,
    querystring: unreadQuery,
    responses: { 200: unreadSummarySchema.describe('the sums over your conversations') },
    errors: QUERY_ERRORS,
  },
  listNotifications: {
    name: 'listNotifications',
    method: 'GET',
    path: '/v1/notifications',
    summary: `Your notifications, newest first. ${stale}`,
    tags: ['notifications'],
    params: noParams,
    querystring: listNotificationsQuery,
    responses: { 200: notificationPageSchema.describe('a page of notifications') },
    errors: QUERY_ERRORS,
  },
  presence: {
    name: 'presence',
    method: 'GET',
    path: '/v1/presence',
    summary: 'Online status of users who share a conversation with you (others read as unknown)',
    tags: ['queries'],
    params: noParams,
    querystring: presenceQuery,
    responses: { 200: presenceResultSchema.describe('one entry per requested user, in order') },
    errors: QUERY_ERRORS,
  },
  adminStream: {
    name: 'adminStream',
    method: 'GET',
    path: '/v1/admin/streams/:streamId',
    summary: 'Raw events of one stream from fromRevision (role admin; a missing stream has none)',
    tags: ['admin'],
    params: adminStreamParams,
    querystring: adminStreamQuery,
    responses: { 200: streamEventsSchema.describe('the events, edits and deletes included') },
    errors: [...QUERY_ERRORS, 'forbidden'],
  },
  exportEvents: {
    name: 'exportEvents',
    method: 'GET',
    path: '/v1/admin/events',
    summary:
      'The global event log in log order, upcast to the current schema (role admin or analyst). JSON: one page of up to limit events and nextPosition. With Accept: application/x-ndjson: every event after from to the end of the log, one envelope per line; with follow=true the stream stays open and carries new events until the client disconnects.',
    tags: ['admin'],
    params: noParams,
    querystring: exportEventsQuery,
    responses: { 200: exportPageSchema.describe('a page of the log, or (NDJSON) every event to the end') },
    ndjsonLine: exportedEventSchema.describe('one event envelope per line, in log order'),
    // No 413: like every GET route it reads no body (fastify does not parse one), so none is too large.
    errors: [...QUERY_ERRORS, 'forbidden'],
  },
} as const satisfies Record<string, RouteShape>;

/** A query's answer is `ResultOf<QueryShapes[name]>`. */
export type QueryShapes = typeof queryShapes;
