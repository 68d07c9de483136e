import { z } from 'zod';
import type { Envelope } from './envelope.js';
import type { ApiErrorBody } from './errors.js';
import { uuidSchema } from './ids.js';
import type { Notification } from './queries.js';
import { messageBodySchema } from './text.js';

// WebSocket protocol v1 (API.md §4).

export const WS_PATH = '/v1/ws';
export const WS_SUBPROTOCOL = 'chat.v1';
export const WS_MAX_FRAME_BYTES = 16 * 1024;
export const RESUME_MAX_EVENTS = 500;

export const WS_CLOSE = {
  goingAway: 1001,
  policyViolation: 1008,
  tooLarge: 1009,
  slowConsumer: 1013,
  tokenExpired: 4401,
} as const;

const ref = z.string().max(64).optional();

export const clientFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('send'),
    ref,
    conversationId: uuidSchema,
    messageId: uuidSchema,
    body: messageBodySchema,
    replyTo: uuidSchema.optional(),
  }),
  z.strictObject({
    type: z.literal('read'),
    ref,
    conversationId: uuidSchema,
    upToSeq: z.number().int().min(0),
  }),
  z.strictObject({ type: z.literal('typing'), ref, conversationId: uuidSchema }),
  z.strictObject({
    type: z.literal('resume'),
    ref,
    positions: z.record(z.string(), z.number().int().min(-1)),
  }),
  z.strictObject({ type: z.literal('ping'), ref }),
]);
export type ClientFrame = z.infer<typeof clientFrameSchema>;
export type ClientFrameInput = z.input<typeof clientFrameSchema>;

export type ConversationEnvelope = Envelope<
  'ConversationStarted' | 'MemberJoined' | 'MemberLeft' | 'MessageSent' | 'MessageEdited' | 'MessageDeleted'
>;

export type ServerFrame =
  | { type: 'hello'; userId: string; connectionId: string; heartbeatMs: number }
  | { type: 'event'; conversationId: string; seq: number; event: ConversationEnvelope }
  | { type: 'receipt'; conversationId: string; userId: string; readSeq: number; at: string }
  | { type: 'typing'; conversationId: string; userId: string; at: string }
  | { type: 'presence'; userId: string; status: 'online' | 'offline'; at: string }
  | { type: 'unread'; conversationId: string; unreadCount: number; total: number }
  | { type: 'notification'; notification: Notification }
  | { type: 'ack'; ref: string | null; result: Record<string, unknown> }
  | { type: 'error'; ref: string | null; error: ApiErrorBody['error'] }
  | { type: 'resumed'; ref: string | null; truncated: string[]; unknown: string[] }
  | { type: 'pong'; ref: string | null };

export type ServerFrameOf<T extends ServerFrame['type']> = Extract<ServerFrame, { type: T }>;
