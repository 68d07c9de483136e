import { z } from 'zod';
import {
  type CommandName,
  type CommandShapes,
  commandShapes,
  createConversationResult,
  markReadResult,
  positionResult,
  readNotificationsResult,
  sendMessageResult,
  seqResult,
  typingResult,
} from './commands.js';
import { eventMetadataSchema } from './envelope.js';
import { apiErrorSchema } from './errors.js';
import { CONVERSATION_EVENT_TYPES, type ConversationEventType, eventDataSchemas } from './events.js';
import { instantSchema, MAX_SEQ, seqSchema, userIdSchema, uuidOutputSchema } from './ids.js';
import { notificationSchema } from './queries.js';
import { textSchema } from './text.js';

// WebSocket protocol v1 (API.md §4).

export const WS_PATH = '/v1/ws';
export const WS_SUBPROTOCOL = 'chat.v1';
export const WS_MAX_FRAME_BYTES = 16 * 1024;
export const RESUME_MAX_EVENTS = 500;
/**
 * Conversations one `resume` may name (more → `validation_failed`). 256 entries with 10-digit seqs fit
 * the 16 KiB frame limit; the SDK sends the most recently active ones and pages the rest over HTTP.
 */
export const RESUME_MAX_CONVERSATIONS = 256;

export const WS_CLOSE = {
  goingAway: 1001,
  policyViolation: 1008,
  tooLarge: 1009,
  /** The gateway could not read what a new socket needs (its user's conversations); reconnect later. */
  internalError: 1011,
  slowConsumer: 1013,
  tokenExpired: 4401,
  /** The user opened more sockets than a gateway allows per user; this one was the oldest. */
  tooManySockets: 4409,
} as const;

/** Echoed in the answer to the frame that carried it. */
export const refSchema = textSchema.max(64);

/** The commands a client frame runs (their shapes name the frame). */
export type FrameCommandName = {
  [N in CommandName]: CommandShapes[N] extends { frame: { type: string } } ? N : never;
}[CommandName];
type FrameTypeOf<N extends FrameCommandName> = CommandShapes[N]['frame']['type'];
/** The fields of a body schema (`noBody` has none). */
type BodyFields<B> =
  B extends z.ZodObject<infer S>
    ? S
    : B extends z.ZodOptional<z.ZodNullable<z.ZodObject<infer S>>>
      ? S
      : never;
type CommandFrameSchema<N extends FrameCommandName> = z.ZodObject<
  {
    type: z.ZodLiteral<FrameTypeOf<N>>;
    ref: z.ZodOptional<typeof refSchema>;
  } & CommandShapes[N]['params']['shape'] &
    BodyFields<CommandShapes[N]['body']>,
  z.core.$strict
>;

const objectFields = (schema: z.core.$ZodType): z.ZodRawShape => {
  if (schema instanceof z.ZodObject) return schema.shape;
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable)
    return objectFields(schema.unwrap());
  throw new Error('a command with a client frame has an object body (or none)');
};

const frameCommands = (Object.keys(commandShapes) as CommandName[]).filter(
  (name): name is FrameCommandName => 'frame' in commandShapes[name],
);

/**
 * The client frame of each command that has one (`send`, `read`, `typing`): `type`, `ref`, then the
 * command's path parameters and body fields, so a frame is validated exactly like the HTTP request.
 */
export const commandFrameSchemas = Object.fromEntries(
  frameCommands.map((name) => {
    const shape = commandShapes[name];
    const schema = z.strictObject({
      type: z.literal(shape.frame.type),
      ref: refSchema.optional(),
      ...shape.params.shape,
      ...objectFields(shape.body),
    });
    return [shape.frame.type, schema];
  }),
) as { [N in FrameCommandName as FrameTypeOf<N>]: CommandFrameSchema<N> };

export const clientFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('resume'),
    ref: refSchema.optional(),
    positions: z
      .record(textSchema.max(64), z.number().int().min(-1).max(MAX_SEQ))
      .refine((p) => Object.keys(p).length <= RESUME_MAX_CONVERSATIONS, {
        message: `at most ${RESUME_MAX_CONVERSATIONS} conversations per resume`,
      }),
  }),
  z.strictObject({ type: z.literal('ping'), ref: refSchema.optional() }),
  ...Object.values(commandFrameSchemas),
]);
export type ClientFrame = z.output<typeof clientFrameSchema>;
export type ClientFrameInput = z.input<typeof clientFrameSchema>;
export type CommandFrame = Extract<ClientFrame, { type: FrameTypeOf<FrameCommandName> }>;

/**
 * The command a client frame runs, as the gateway forwards it over NATS: the frame's path parameters
 * and body fields split apart again, and whether the client gets an `ack` (typing gets none).
 */
export const frameCommand = (
  frame: CommandFrame,
): {
  name: FrameCommandName;
  ack: boolean;
  params: Record<string, string>;
  body: Record<string, unknown>;
} => {
  const name = frameCommands.find((n) => commandShapes[n].frame.type === frame.type);
  if (name === undefined) throw new Error(`no command for frame ${frame.type}`);
  const shape = commandShapes[name];
  const params: Record<string, string> = {};
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(frame)) {
    if (key === 'type' || key === 'ref' || value === undefined) continue;
    if (key in shape.params.shape) params[key] = String(value);
    else body[key] = value;
  }
  return { name, ack: shape.frame.ack, params, body };
};

// Server → client frames.

const conversationEnvelope = <T extends ConversationEventType>(type: T) =>
  z.object({
    id: uuidOutputSchema,
    type: z.literal(type),
    streamId: z.string(),
    revision: seqSchema,
    position: z.string(),
    occurredAt: z.string(),
    data: eventDataSchemas[type],
    metadata: eventMetadataSchema,
  });

/** The envelope schema of each type apart (distributed over the union), so type and data stay paired. */
type EnvelopeSchema<T extends ConversationEventType> = T extends ConversationEventType
  ? ReturnType<typeof conversationEnvelope<T>>
  : never;

/** An event of a conversation stream as `event` frames carry it (API.md §3). */
export const conversationEnvelopeSchema = z.union(
  CONVERSATION_EVENT_TYPES.map(conversationEnvelope) as EnvelopeSchema<ConversationEventType>[],
);
export type ConversationEnvelope = z.output<typeof conversationEnvelopeSchema>;

/** What an `ack` carries: the result of the command it answers. */
export const commandResultSchema = z.union([
  createConversationResult,
  sendMessageResult,
  seqResult,
  markReadResult,
  typingResult,
  positionResult,
  readNotificationsResult,
]);

const nullableRef = z.string().nullable();

export const serverFrameSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('hello'),
    userId: userIdSchema,
    connectionId: z.string(),
    heartbeatMs: z.number().int(),
  }),
  z.object({
    type: z.literal('event'),
    conversationId: uuidOutputSchema,
    seq: seqSchema,
    event: conversationEnvelopeSchema,
  }),
  z.object({
    type: z.literal('receipt'),
    conversationId: uuidOutputSchema,
    userId: userIdSchema,
    readSeq: seqSchema,
    at: instantSchema,
  }),
  z.object({
    type: z.literal('typing'),
    conversationId: uuidOutputSchema,
    userId: userIdSchema,
    at: instantSchema,
  }),
  z.object({
    type: z.literal('presence'),
    userId: userIdSchema,
    status: z.enum(['online', 'offline']),
    at: instantSchema,
  }),
  z.object({
    type: z.literal('unread'),
    conversationId: uuidOutputSchema,
    unreadCount: z.number().int().min(0),
    total: z.number().int().min(0),
  }),
  z.object({ type: z.literal('notification'), notification: notificationSchema }),
  z.object({ type: z.literal('ack'), ref: nullableRef, result: commandResultSchema }),
  z.object({ type: z.literal('error'), ref: nullableRef, error: apiErrorSchema }),
  z.object({
    type: z.literal('resumed'),
    ref: nullableRef,
    truncated: z.array(z.string()),
    unknown: z.array(z.string()),
  }),
  z.object({ type: z.literal('pong'), ref: nullableRef }),
]);
export type ServerFrame = z.output<typeof serverFrameSchema>;
export type ServerFrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;
