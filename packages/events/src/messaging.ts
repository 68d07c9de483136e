import { z } from 'zod';
import type { CommandResult } from './commands.js';
import type { Envelope } from './envelope.js';
import { type ApiError, apiErrorSchema } from './errors.js';
import { userIdSchema } from './ids.js';
import type { MembershipEventType } from './membership.js';
import type { Notification } from './queries.js';
import { textSchema } from './text.js';
import { commandResultSchema } from './ws.js';

/**
 * A command sent over NATS request/reply to `<prefix>.cmd.<name>`. The gateway has already
 * authenticated the user; `params` carries path parameters (`conversationId`, `messageId`, `userId`)
 * and `body` the same JSON body as the HTTP route. The command-api still checks it: it is input.
 */
export const commandRequestSchema = z.object({
  userId: userIdSchema,
  roles: z.array(textSchema).optional(),
  /** A UUID is carried into event metadata; anything else is replaced by a fresh one. */
  correlationId: z.string().optional(),
  params: z.record(z.string(), z.string()).optional(),
  body: z.unknown(),
  /**
   * How long the requester waits for the reply, in ms (the gateway's COMMAND_TIMEOUT_MS). A command
   * still waiting to run when most of it has passed is not run: the requester has answered its client
   * `unavailable` by then, and a command written after that answer would contradict it.
   */
  budgetMs: z.number().int().min(1).max(600_000).optional(),
});
export type CommandRequest = z.input<typeof commandRequestSchema>;

/** The reply: the HTTP status and body the same command would get over HTTP. */
export const commandReplySchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), status: z.number().int(), result: commandResultSchema }),
  z.object({ ok: z.literal(false), status: z.number().int(), error: apiErrorSchema }),
]);
export type CommandReply =
  | { ok: true; status: number; result: CommandResult }
  | { ok: false; status: number; error: ApiError };

/** Messages on `<prefix>.user.<userId>`. */
export type UserChannelMessage =
  /** A membership change (or conversation start) that concerns this user: gateways (un)subscribe. */
  | { type: 'membership'; event: Envelope<MembershipEventType> }
  | { type: 'unread'; conversationId: string; unreadCount: number; total: number }
  | { type: 'notification'; notification: Notification };
