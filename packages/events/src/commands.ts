import { z } from 'zod';
import type { ErrorCode } from './errors.js';
import { conversationKindSchema, notificationLevelSchema, reactionSchema } from './events.js';
import {
  instantSchema,
  isoTimeSchema,
  positionSchema,
  seqSchema,
  userIdSchema,
  uuidOutputSchema,
  uuidSchema,
  uuidVersion,
} from './ids.js';
import type { ResultOf, RouteShape } from './routes.js';
import { messageBodySchema, titleSchema } from './text.js';

// The commands of the API (API.md §2.1-2.3, §2.4 notifications/read): request bodies, path parameters,
// results and routes, each defined once. Objects are strict: an unknown field is a validation error
// rather than silently dropped, so a client typo never looks like success.

export const MAX_CONVERSATION_MEMBERS = 1000;

/**
 * Direct conversation ids are version-5 UUIDs derived from the pair of users (API.md §2.1), so a
 * group's own id may not be one: otherwise anyone could start a group under the id of two other
 * users' direct conversation and take it from them.
 */
export const DIRECT_CONVERSATION_ID_VERSION = 5;

export const createConversationBody = z
  .strictObject({
    conversationId: uuidSchema.optional(),
    kind: conversationKindSchema,
    members: z.array(userIdSchema).min(1).max(MAX_CONVERSATION_MEMBERS),
    title: titleSchema.optional(),
  })
  .superRefine((body, ctx) => {
    const id = body.conversationId;
    if (body.kind === 'group' && id !== undefined && uuidVersion(id) === DIRECT_CONVERSATION_ID_VERSION) {
      ctx.addIssue({
        code: 'custom',
        path: ['conversationId'],
        message: `version-${DIRECT_CONVERSATION_ID_VERSION} UUIDs are reserved for direct conversations`,
      });
    }
  });
export type CreateConversationBody = z.infer<typeof createConversationBody>;

export const addMemberBody = z.strictObject({ userId: userIdSchema });
export type AddMemberBody = z.infer<typeof addMemberBody>;

export const sendMessageBody = z.strictObject({
  messageId: uuidSchema,
  body: messageBodySchema,
  replyTo: uuidSchema.optional(),
  /** A reply in the thread of this root message (a message of the main timeline, not deleted). */
  threadRootId: uuidSchema.optional(),
});
export type SendMessageBody = z.infer<typeof sendMessageBody>;

export const editMessageBody = z.strictObject({ body: messageBodySchema });
export type EditMessageBody = z.infer<typeof editMessageBody>;

export const markReadBody = z.strictObject({ upToSeq: seqSchema });
export type MarkReadBody = z.infer<typeof markReadBody>;

/** `null` unmutes; a time is converted to UTC and must lie in 1970..9999 (API.md §2.3). */
export const muteBody = z.strictObject({ until: isoTimeSchema.nullable() });
export type MuteBody = z.infer<typeof muteBody>;

export const setNotificationLevelBody = z.strictObject({ level: notificationLevelSchema });
export type SetNotificationLevelBody = z.infer<typeof setNotificationLevelBody>;

export const readNotificationsBody = z.union([
  z.strictObject({ notificationIds: z.array(uuidSchema).min(1).max(1000) }),
  z.strictObject({ all: z.literal(true) }),
]);
export type ReadNotificationsBody = z.infer<typeof readNotificationsBody>;

/** Typing and DELETE routes take no body; `{}` and `null` are read as none (clients often send them). */
export const emptyBody = z.strictObject({});
export const noBody = emptyBody.nullish();

// Path parameters, named alike over HTTP (`/v1/conversations/:conversationId`) and NATS (`params`).
export const noParams = z.strictObject({});
export const conversationParams = z.strictObject({ conversationId: uuidSchema });
export const memberParams = z.strictObject({ conversationId: uuidSchema, userId: userIdSchema });
export const messageParams = z.strictObject({ conversationId: uuidSchema, messageId: uuidSchema });
/** The reaction is percent-encoded in the path; fastify decodes it before validation. */
export const reactionParams = messageParams.extend({ reaction: reactionSchema });

// Results: the HTTP response bodies, the `result` of a NATS reply and of a WS `ack`.
export const createConversationResult = z.object({
  conversationId: uuidOutputSchema,
  seq: seqSchema,
  position: positionSchema,
});
export const seqResult = z.object({ seq: seqSchema, position: positionSchema });
export const sendMessageResult = z.object({
  messageId: uuidOutputSchema,
  conversationId: uuidOutputSchema,
  seq: seqSchema,
  sentAt: instantSchema,
  position: positionSchema,
});
export const markReadResult = z.object({
  readSeq: seqSchema,
  /** Absent when the watermark did not move (nothing appended). */
  position: positionSchema.optional(),
});
export const typingResult = z.object({ throttled: z.boolean() });
export const positionResult = z.object({ position: positionSchema });
export const readNotificationsResult = z.object({
  updated: z.number().int().min(0),
  position: positionSchema,
});

/** A command's route; `frame` names the WS client frame the gateway forwards to it (API.md §4). */
export type CommandShape = RouteShape & {
  readonly body: z.ZodType;
  readonly frame?: { readonly type: string; readonly ack: boolean };
};

/**
 * The fields a command takes from its request, as a decider receives them: path parameters and body
 * together, without `Omitted` (the parameter that names the aggregate's stream), every optional field
 * settled to `null` when absent (as events carry it). The server adds the rest — the actor, the clock,
 * ids it derives — so a field added to a shape reaches the decider's command type with no edit there.
 */
export type CommandFields<S extends CommandShape, Omitted extends string = never> = Settled<
  Named<z.output<S['params']>> & Named<NonNullable<z.output<S['body']>>>,
  Omitted
>;
/** The named fields of an object type (a strict object's output also has a `never` index signature). */
type Named<T> = { [K in keyof T as string extends K ? never : K]: T[K] };
type Settled<T, Omitted extends string> = {
  -readonly [K in Exclude<keyof T, Omitted>]-?: undefined extends T[K]
    ? Exclude<T[K], undefined> | null
    : T[K];
};

/** What every command can answer besides its own refusals. */
const COMMAND_ERRORS = [
  'validation_failed',
  'unauthorized',
  'payload_too_large',
  'rate_limited',
  'unavailable',
] as const satisfies readonly ErrorCode[];
/** A command's errors: those every command can answer, then its own. */
export const commandErrors = (...own: ErrorCode[]): readonly ErrorCode[] => [...COMMAND_ERRORS, ...own];
const errors = commandErrors;

const repeat = 'an idempotent repeat: the original result, nothing appended';

/**
 * Every command, by name. Adding one is an entry here (with its body and result schemas above), a
 * definition in the command-api's catalogue and a decider rule: routes, NATS subjects, WS frames,
 * validation, serialization, the OpenAPI document and SDK types follow from it.
 */
export const commandShapes = {
  createConversation: {
    name: 'createConversation',
    method: 'POST',
    path: '/v1/conversations',
    summary: 'Start a conversation (direct ids are derived from the pair; idempotent)',
    tags: ['conversations'],
    params: noParams,
    body: createConversationBody,
    responses: {
      201: createConversationResult.describe('started'),
      200: createConversationResult.describe(repeat),
    },
    errors: errors('conflict', 'forbidden'),
  },
  addMember: {
    name: 'addMember',
    method: 'POST',
    path: '/v1/conversations/:conversationId/members',
    summary: 'Add a member to a group (already a member: the seq of the earlier join)',
    tags: ['conversations'],
    params: conversationParams,
    body: addMemberBody,
    responses: { 200: seqResult.describe('the member joined (now or earlier)') },
    errors: errors('not_found', 'conflict', 'forbidden'),
  },
  removeMember: {
    name: 'removeMember',
    method: 'DELETE',
    path: '/v1/conversations/:conversationId/members/:userId',
    summary: 'Remove a member (yourself, or anyone if you created the conversation)',
    tags: ['conversations'],
    params: memberParams,
    body: noBody,
    responses: { 200: seqResult.describe('the member left') },
    errors: errors('forbidden', 'not_found'),
  },
  sendMessage: {
    name: 'sendMessage',
    method: 'POST',
    path: '/v1/conversations/:conversationId/messages',
    summary: 'Send a message (messageId is the idempotency key)',
    tags: ['messages'],
    params: conversationParams,
    body: sendMessageBody,
    responses: { 201: sendMessageResult.describe('sent'), 200: sendMessageResult.describe(repeat) },
    errors: errors('not_found', 'conflict', 'forbidden'),
    frame: { type: 'send', ack: true },
  },
  editMessage: {
    name: 'editMessage',
    method: 'PATCH',
    path: '/v1/conversations/:conversationId/messages/:messageId',
    summary: 'Edit your message',
    tags: ['messages'],
    params: messageParams,
    body: editMessageBody,
    responses: { 200: seqResult.describe('edited: the seq of the edit event') },
    errors: errors('forbidden', 'not_found', 'conflict'),
  },
  deleteMessage: {
    name: 'deleteMessage',
    method: 'DELETE',
    path: '/v1/conversations/:conversationId/messages/:messageId',
    summary: 'Delete your message (a tombstone in read models; again: the first delete)',
    tags: ['messages'],
    params: messageParams,
    body: noBody,
    responses: { 200: seqResult.describe('deleted (now or earlier)') },
    errors: errors('forbidden', 'not_found'),
  },
  addReaction: {
    name: 'addReaction',
    method: 'PUT',
    path: '/v1/conversations/:conversationId/messages/:messageId/reactions/:reaction',
    summary:
      'React to a message (reaction: 1..32 characters, no whitespace, percent-encoded; already reacted: the earlier event)',
    tags: ['messages'],
    params: reactionParams,
    body: noBody,
    responses: { 200: seqResult.describe('reacted, now or earlier (then nothing appended)') },
    errors: errors('not_found'),
  },
  removeReaction: {
    name: 'removeReaction',
    method: 'DELETE',
    path: '/v1/conversations/:conversationId/messages/:messageId/reactions/:reaction',
    summary:
      'Take your reaction back (not reacted: the event that removed it, or the message if there was none)',
    tags: ['messages'],
    params: reactionParams,
    body: noBody,
    responses: { 200: seqResult.describe('not reacted any more, now or earlier (then nothing appended)') },
    errors: errors('not_found'),
  },
  markRead: {
    name: 'markRead',
    method: 'POST',
    path: '/v1/conversations/:conversationId/read',
    summary: 'Move your read watermark forward',
    tags: ['read state'],
    params: conversationParams,
    body: markReadBody,
    responses: { 200: markReadResult.describe('the watermark after the command') },
    errors: errors('not_found'),
    frame: { type: 'read', ack: true },
  },
  typing: {
    name: 'typing',
    method: 'POST',
    path: '/v1/conversations/:conversationId/typing',
    summary: 'Signal typing (at most one event per user per conversation per 3 s)',
    tags: ['read state'],
    params: conversationParams,
    body: noBody,
    responses: { 202: typingResult.describe('accepted; throttled when no event was appended') },
    errors: errors('not_found'),
    frame: { type: 'typing', ack: false },
  },
  mute: {
    name: 'mute',
    method: 'PUT',
    path: '/v1/conversations/:conversationId/mute',
    summary: 'Mute until a time (1970..9999, UTC), or unmute with null',
    tags: ['read state'],
    params: conversationParams,
    body: muteBody,
    responses: { 200: positionResult.describe('muted or unmuted') },
    errors: errors('not_found'),
  },
  setNotificationLevel: {
    name: 'setNotificationLevel',
    method: 'PUT',
    path: '/v1/conversations/:conversationId/notifications',
    summary:
      'Set your notification level here: all, mentions (mentions and replies to you) or none. Default: all in direct conversations, mentions in groups',
    tags: ['read state'],
    params: conversationParams,
    body: setNotificationLevelBody,
    responses: {
      200: positionResult.describe(
        'the level is set; already set to it: the earlier event, nothing appended',
      ),
    },
    errors: errors('not_found'),
  },
  readNotifications: {
    name: 'readNotifications',
    method: 'POST',
    path: '/v1/notifications/read',
    summary: 'Mark notifications read (listed ids, or all)',
    tags: ['notifications'],
    params: noParams,
    body: readNotificationsBody,
    responses: { 200: readNotificationsResult.describe('how many of your records went from unread to read') },
    errors: errors(),
  },
} as const satisfies Record<string, CommandShape>;

export type CommandShapes = typeof commandShapes;
export type CommandName = keyof CommandShapes;
export const COMMAND_NAMES = Object.keys(commandShapes) as CommandName[];

// The result of a command is `ResultOf<CommandShapes[name]>`; the SDK's commands name theirs.
export type SendMessageResult = ResultOf<CommandShapes['sendMessage']>;
export type MarkReadResult = ResultOf<CommandShapes['markRead']>;
export type ReadNotificationsResult = ResultOf<CommandShapes['readNotifications']>;
/** The result of any command: what a NATS reply or a WS `ack` carries. */
export type CommandResult = { [N in CommandName]: ResultOf<CommandShapes[N]> }[CommandName];
