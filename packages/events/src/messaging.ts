import type { Envelope } from './envelope.js';
import type { ApiErrorBody } from './errors.js';
import type { Notification } from './queries.js';
import type { CommandName } from './subjects.js';

/**
 * A command sent over NATS request/reply to `<prefix>.cmd.<name>`. The gateway has already
 * authenticated the user; `params` carries path parameters (`conversationId`, `messageId`, `userId`)
 * and `body` the same JSON body as the HTTP route.
 */
export type CommandRequest = {
  userId: string;
  roles?: string[];
  correlationId?: string;
  params?: Record<string, string>;
  body: unknown;
};

/** The reply: the HTTP status and body the same command would get over HTTP. */
export type CommandReply =
  | { ok: true; status: number; result: Record<string, unknown> }
  | { ok: false; status: number; error: ApiErrorBody['error'] };

export type CommandRequestFor<N extends CommandName> = CommandRequest & { command?: N };

/** Messages on `<prefix>.user.<userId>`. */
export type UserChannelMessage =
  /** A membership change (or conversation start) that concerns this user: gateways (un)subscribe. */
  | { type: 'membership'; event: Envelope<'ConversationStarted' | 'MemberJoined' | 'MemberLeft'> }
  | { type: 'unread'; conversationId: string; unreadCount: number; total: number }
  | { type: 'notification'; notification: Notification };
