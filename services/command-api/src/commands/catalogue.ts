import { randomUUID } from 'node:crypto';
import {
  addMemberBody,
  ChatError,
  type CommandName,
  createConversationBody,
  editMessageBody,
  markReadBody,
  muteBody,
  sendMessageBody,
  typingBody,
  userIdSchema,
  uuidSchema,
} from '@chat/events';
import { z } from 'zod';
import type { ConversationCommand } from '../conversations/commands.js';
import { readWatermark } from '../conversations/decider.js';
import type { ConversationState } from '../conversations/state.js';
import type { AppendedEvent, CommandMetadata, ConversationWriter } from './conversation-writer.js';
import { directConversationId } from './ids.js';

/** Who runs a command: from a verified JWT (HTTP) or the gateway's authenticated request (NATS). */
export type Actor = { userId: string; roles: string[]; correlationId: string; causationId: string | null };

/** What a command answers: the HTTP status and body (also the `result` of a NATS reply / WS ack). */
export type CommandOutcome = { status: number; result: Record<string, unknown> };

export type Clock = { now: () => Date };

export type CommandServices = { writer: ConversationWriter; clock: Clock };

/**
 * One command of the API, served by the HTTP route and by `<prefix>.cmd.<name>` alike. `params`
 * is the shape over NATS (`conversationId`, `messageId`, `userId`); HTTP routes map their path to it.
 */
export type CommandDefinition<P extends z.ZodType = z.ZodType, B extends z.ZodType = z.ZodType> = {
  name: CommandName;
  params: P;
  body: B;
  // A method (not a property) so that a definition with concrete schemas is also a CommandDefinition
  // of plain ZodTypes, which is how the registry holds them all.
  run(
    services: CommandServices,
    actor: Actor,
    params: z.output<P>,
    body: z.output<B>,
  ): Promise<CommandOutcome>;
};

export const defineCommand = <P extends z.ZodType, B extends z.ZodType>(
  definition: CommandDefinition<P, B>,
): CommandDefinition<P, B> => definition;

const conversationParams = z.strictObject({ conversationId: uuidSchema });
const messageParams = z.strictObject({ conversationId: uuidSchema, messageId: uuidSchema });
const memberParams = z.strictObject({ conversationId: uuidSchema, userId: userIdSchema });

const metadataOf = (actor: Actor): CommandMetadata => ({
  userId: actor.userId,
  correlationId: actor.correlationId,
  causationId: actor.causationId,
});

const ok = (status: number, result: Record<string, unknown>): CommandOutcome => ({ status, result });

/** The appended event, or the recorded one an idempotent repeat refers to. */
const required = <T>(value: T | null | undefined): T => {
  if (value === null || value === undefined) throw new Error('state lacks the record the decision relied on');
  return value;
};

const run = <R>(
  services: CommandServices,
  actor: Actor,
  conversationId: string,
  command: ConversationCommand,
  respond: (state: ConversationState, appended: AppendedEvent | null) => R,
) => services.writer.execute(conversationId, command, metadataOf(actor), respond);

const nowIso = (services: CommandServices) => services.clock.now().toISOString();

export const createConversation = defineCommand({
  name: 'createConversation',
  params: z.strictObject({}),
  body: createConversationBody,
  run: (services, actor, _params, body) => {
    const others = [...new Set(body.members)].filter((m) => m !== actor.userId);
    let conversationId = body.conversationId ?? randomUUID();
    if (body.kind === 'direct' && others.length === 1 && others[0] !== undefined) {
      const derived = directConversationId(actor.userId, others[0]);
      if (body.conversationId !== undefined && body.conversationId !== derived) {
        const message = 'a direct conversation id is derived from its two members; omit conversationId';
        throw new ChatError('validation_failed', message, [{ path: ['conversationId'], message }]);
      }
      conversationId = derived;
    }
    const command: ConversationCommand = {
      type: 'StartConversation',
      data: {
        conversationId,
        kind: body.kind,
        members: body.members,
        title: body.title ?? null,
        createdBy: actor.userId,
      },
    };
    return run(services, actor, conversationId, command, (state, appended) => {
      const started = required(state.started);
      return ok(appended ? 201 : 200, { conversationId, seq: started.seq, position: started.position });
    });
  },
});

export const addMember = defineCommand({
  name: 'addMember',
  params: conversationParams,
  body: addMemberBody,
  run: (services, actor, { conversationId }, { userId }) =>
    run(
      services,
      actor,
      conversationId,
      { type: 'AddMember', data: { userId, addedBy: actor.userId } },
      (state) => {
        const member = required(state.members.get(userId));
        return ok(200, { seq: member.seq, position: member.position });
      },
    ),
});

export const removeMember = defineCommand({
  name: 'removeMember',
  params: memberParams,
  body: z.unknown(),
  run: (services, actor, { conversationId, userId }) =>
    run(
      services,
      actor,
      conversationId,
      { type: 'RemoveMember', data: { userId, removedBy: actor.userId } },
      (_state, appended) => {
        const { seq, position } = required(appended);
        return ok(200, { seq, position });
      },
    ),
});

export const sendMessage = defineCommand({
  name: 'sendMessage',
  params: conversationParams,
  body: sendMessageBody,
  run: (services, actor, { conversationId }, { messageId, body, replyTo }) => {
    const command: ConversationCommand = {
      type: 'SendMessage',
      data: { messageId, senderId: actor.userId, body, replyTo: replyTo ?? null, now: nowIso(services) },
    };
    return run(services, actor, conversationId, command, (state, appended) => {
      const message = required(state.messages.get(messageId));
      return ok(appended ? 201 : 200, {
        messageId,
        conversationId,
        seq: message.seq,
        sentAt: message.sentAt,
        position: message.position,
      });
    });
  },
});

export const editMessage = defineCommand({
  name: 'editMessage',
  params: messageParams,
  body: editMessageBody,
  run: (services, actor, { conversationId, messageId }, { body }) =>
    run(
      services,
      actor,
      conversationId,
      { type: 'EditMessage', data: { messageId, editorId: actor.userId, body, now: nowIso(services) } },
      (_state, appended) => {
        const { seq, position } = required(appended);
        return ok(200, { seq, position });
      },
    ),
});

export const deleteMessage = defineCommand({
  name: 'deleteMessage',
  params: messageParams,
  body: z.unknown(),
  run: (services, actor, { conversationId, messageId }) =>
    run(
      services,
      actor,
      conversationId,
      { type: 'DeleteMessage', data: { messageId, deletedBy: actor.userId, now: nowIso(services) } },
      (state) => {
        const { seq, position } = required(state.messages.get(messageId)?.deleted);
        return ok(200, { seq, position });
      },
    ),
});

export const markRead = defineCommand({
  name: 'markRead',
  params: conversationParams,
  body: markReadBody,
  run: (services, actor, { conversationId }, { upToSeq }) =>
    run(
      services,
      actor,
      conversationId,
      { type: 'MarkRead', data: { userId: actor.userId, upToSeq, now: nowIso(services) } },
      (state, appended) =>
        ok(200, {
          readSeq: readWatermark(state, actor.userId),
          ...(appended ? { position: appended.position } : {}),
        }),
    ),
});

export const typing = defineCommand({
  name: 'typing',
  params: conversationParams,
  body: typingBody.nullish(),
  run: (services, actor, { conversationId }) =>
    run(
      services,
      actor,
      conversationId,
      { type: 'StartTyping', data: { userId: actor.userId, now: nowIso(services) } },
      (_state, appended) => ok(202, { throttled: appended === null }),
    ),
});

export const mute = defineCommand({
  name: 'mute',
  params: conversationParams,
  body: muteBody,
  run: (services, actor, { conversationId }, { until }) =>
    run(
      services,
      actor,
      conversationId,
      { type: 'Mute', data: { userId: actor.userId, until } },
      (_state, appended) => ok(200, { position: required(appended).position }),
    ),
});

/** Every command this service owns (readNotifications is registered by the notifications plugin). */
export const conversationCommands = [
  createConversation,
  addMember,
  removeMember,
  sendMessage,
  editMessage,
  deleteMessage,
  markRead,
  typing,
  mute,
] as const;
