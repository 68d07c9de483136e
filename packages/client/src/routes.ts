import {
  type CommandName,
  type CommandShapes,
  commandShapes,
  conversationParams,
  type ErrorCode,
  type Message,
  messageParams,
  noBody,
  positionResult,
  type RouteShape,
  seqResult,
  textSchema,
  userIdSchema,
  uuidOutputSchema,
} from '@chat/events';
import { z } from 'zod';

// Routes of contract v1.1 that @chat/events does not define yet: reactions (API.md §2.2.1) and the
// notification level (§2.3). The SDK serves them already, typed from these stand-ins; once a command
// shape with the same method and path lands in `commandShapes`, its types and schemas replace them
// here without a change to the SDK (routes.unit.spec.ts fails if one lands under another path).

export const REACTION_PATH = '/v1/conversations/:conversationId/messages/:messageId/reactions/:reaction';
export const NOTIFICATION_LEVEL_PATH = '/v1/conversations/:conversationId/notifications';

const commandErrors = (...own: ErrorCode[]): readonly ErrorCode[] => [
  'validation_failed',
  'unauthorized',
  'payload_too_large',
  'rate_limited',
  'unavailable',
  ...own,
];

const reactionParams = messageParams.extend({ reaction: textSchema });

/** Stand-ins for the v1.1 command shapes, written from API.md. */
export const pendingShapes = {
  addReaction: {
    name: 'addReaction',
    method: 'PUT',
    path: REACTION_PATH,
    summary: 'React to a message (again: the earlier position, nothing appended)',
    tags: ['messages'],
    params: reactionParams,
    body: noBody,
    responses: { 200: seqResult },
    errors: commandErrors('not_found'),
  },
  removeReaction: {
    name: 'removeReaction',
    method: 'DELETE',
    path: REACTION_PATH,
    summary: 'Take a reaction back (none: the earlier position, nothing appended)',
    tags: ['messages'],
    params: reactionParams,
    body: noBody,
    responses: { 200: seqResult },
    errors: commandErrors('not_found'),
  },
  setNotificationLevel: {
    name: 'setNotificationLevel',
    method: 'PUT',
    path: NOTIFICATION_LEVEL_PATH,
    summary: 'Your notification level in a conversation',
    tags: ['read state'],
    params: conversationParams,
    body: z.strictObject({ level: z.enum(['all', 'mentions', 'none']) }),
    responses: { 200: positionResult },
    errors: commandErrors('not_found'),
  },
} as const satisfies Record<string, RouteShape>;

export type PendingShapes = typeof pendingShapes;
export type PendingName = keyof PendingShapes;

type DefinedShape = CommandShapes[CommandName];
type Defined<M, P> = Extract<DefinedShape, { readonly method: M; readonly path: P }>;
/** The shape @chat/events defines for the route of `Pending`, once it does; `Pending` until then. */
export type ShapeFor<Pending extends RouteShape> = [Defined<Pending['method'], Pending['path']>] extends [
  never,
]
  ? Pending
  : Defined<Pending['method'], Pending['path']>;

/** The shape that serves the route of `pending`: the one of @chat/events when there is one. */
export const definedShapeFor = (pending: RouteShape): RouteShape | undefined =>
  (Object.values(commandShapes) as RouteShape[]).find(
    (shape) => shape.method === pending.method && shape.path === pending.path,
  );

const resolve = <S extends RouteShape>(pending: S) => (definedShapeFor(pending) ?? pending) as ShapeFor<S>;

/** The v1.1 routes as the SDK calls them. */
export const v11Shapes = {
  addReaction: resolve(pendingShapes.addReaction),
  removeReaction: resolve(pendingShapes.removeReaction),
  setNotificationLevel: resolve(pendingShapes.setNotificationLevel),
};

export type NotificationLevel =
  z.input<(typeof v11Shapes)['setNotificationLevel']['body']> extends infer B
    ? B extends { level: infer L }
      ? L
      : never
    : never;

/** A message's reactions (API.md §2.2.1) as the messages query returns them. */
export const pendingReactionSummarySchema = z.object({
  reaction: z.string(),
  count: z.number().int().min(0),
  userIds: z.array(userIdSchema),
});
export type MessageReaction = Message extends { reactions: readonly (infer R)[] }
  ? R
  : z.output<typeof pendingReactionSummarySchema>;

/** Reactions of a message; `[]` while the server's messages carry none (before v1.1 reactions). */
export const reactionsOf = (message: Message): readonly MessageReaction[] => {
  const value: unknown = (message as { reactions?: unknown }).reactions;
  return Array.isArray(value) ? (value as MessageReaction[]) : [];
};

/** `ReactionAdded` / `ReactionRemoved` data (API.md §3, v1.1), until @chat/events has their schemas. */
export const pendingReactionDataSchema = z.looseObject({
  conversationId: uuidOutputSchema,
  messageId: uuidOutputSchema,
  userId: userIdSchema,
  reaction: z.string(),
  at: z.string(),
});
export type ReactionEvent = {
  type: 'ReactionAdded' | 'ReactionRemoved';
  data: z.output<typeof pendingReactionDataSchema>;
};

/** The reaction event an envelope carries (checked against its schema), or null for any other event. */
export const reactionEventOf = (event: { type: string; data: unknown }): ReactionEvent | null => {
  if (event.type !== 'ReactionAdded' && event.type !== 'ReactionRemoved') return null;
  const parsed = pendingReactionDataSchema.safeParse(event.data);
  return parsed.success ? { type: event.type, data: parsed.data } : null;
};
