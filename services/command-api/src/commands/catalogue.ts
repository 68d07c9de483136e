import { randomUUID } from 'node:crypto';
import {
  ChatError,
  type CommandName,
  type CommandShape,
  type CommandShapes,
  commandShapes,
  DIRECT_CONVERSATION_ID_VERSION,
  type ResultOf,
  type SuccessStatus,
  uuidVersion,
} from '@chat/events';
import type { z } from 'zod';
import type { ConversationCommand } from '../conversations/commands.js';
import { readWatermark } from '../conversations/decider.js';
import type { ConversationState, Recorded } from '../conversations/state.js';
import { directConversationId } from './ids.js';
import type { CommandMetadata, ConversationWriter, ReportWriter, UserWriter } from './writer.js';

/** Who runs a command: from a verified JWT (HTTP) or the gateway's authenticated request (NATS). */
export type Actor = {
  userId: string;
  roles: string[];
  correlationId: string;
  causationId: string | null;
  /** `performance.now()` after which the requester no longer waits: the command is not started then. */
  expiresAt?: number;
};

/** What a command answers: the HTTP status and body (also the `result` of a NATS reply / WS ack). */
export type CommandOutcome<S extends CommandShape> = { status: SuccessStatus<S>; result: ResultOf<S> };

export type Clock = { now: () => Date };

export type CommandServices = {
  writer: ConversationWriter;
  users: UserWriter;
  /** Moderation reports (issue 16). */
  reports: ReportWriter;
  clock: Clock;
};

/**
 * One command of the API: its shape from @chat/events (route, params, body, results) and how it runs.
 * The HTTP route and the NATS subject `<prefix>.cmd.<name>` are both registered from it.
 */
export type CommandDefinition<S extends CommandShape> = {
  shape: S;
  run(
    services: CommandServices,
    actor: Actor,
    params: z.output<S['params']>,
    body: z.output<S['body']>,
  ): Promise<CommandOutcome<S>>;
};

/**
 * Any command, as the registry and the route loop hold them. `run` is a method, so its parameters are
 * compared bivariantly and every CommandDefinition fits; callers pass what the shape's schemas parsed.
 */
export type RegisteredCommand = {
  shape: CommandShape;
  run(
    services: CommandServices,
    actor: Actor,
    params: z.output<CommandShape['params']>,
    body: unknown,
  ): Promise<{ status: number; result: unknown }>;
};

export const defineCommand = <S extends CommandShape>(
  shape: S,
  run: CommandDefinition<S>['run'],
): CommandDefinition<S> => ({ shape, run });

/** A command's answer without its `position`, which is `at`'s once the append is confirmed. */
type Answer<S extends CommandShape> = {
  status: SuccessStatus<S>;
  result: Omit<ResultOf<S>, 'position'>;
  at: Recorded | null;
};

type Input<S extends CommandShape> = {
  actor: Actor;
  params: z.output<S['params']>;
  body: z.output<S['body']>;
  /** The clock's time, ISO-8601. */
  now: string;
};

/**
 * A command on one conversation, run by the ConversationWriter: `command` turns the request into the
 * decider's command, `answer` reads the response from the state the command left behind (the event it
 * appended, or the earlier one an idempotent repeat refers to).
 */
const conversationCommand = <N extends CommandName>(
  name: N,
  // NoInfer: the name alone fixes the shape, so answers keep their literal statuses (201, 200).
  spec: NoInfer<{
    /** A check on another aggregate before the command (a block, on the other user's stream). */
    before?: (services: CommandServices, input: Input<CommandShapes[N]>) => Promise<void>;
    command: (input: Input<CommandShapes[N]>) => { conversationId: string; command: ConversationCommand };
    answer: (
      state: ConversationState,
      appended: Recorded | null,
      input: Input<CommandShapes[N]>,
    ) => Answer<CommandShapes[N]>;
  }>,
): CommandDefinition<CommandShapes[N]> =>
  defineCommand(commandShapes[name], async (services, actor, params, body) => {
    const input = { actor, params, body, now: services.clock.now().toISOString() };
    const { conversationId, command } = spec.command(input);
    await spec.before?.(services, input);
    const { status, result, at } = await services.writer.execute(
      conversationId,
      command,
      metadataOf(actor),
      (state, appended) => spec.answer(state, appended, input),
    );
    // The writer resolves once the store confirmed the appends: `at` holds the assigned position.
    return {
      status,
      result: (at ? { ...result, position: at.position } : result) as ResultOf<CommandShapes[N]>,
    };
  });

/** 403 when `other` blocks the actor (decided on `other`'s stream, appending nothing). */
const requireNotBlocked = async (services: CommandServices, actor: Actor, other: string): Promise<void> => {
  await services.users.execute(
    other,
    { type: 'RequireNotBlocking', data: { userId: other, otherUserId: actor.userId } },
    metadataOf(actor),
    () => null,
  );
};

export const metadataOf = (actor: Actor): CommandMetadata => ({
  userId: actor.userId,
  correlationId: actor.correlationId,
  causationId: actor.causationId,
  ...(actor.expiresAt === undefined ? {} : { expiresAt: actor.expiresAt }),
});

/** The record an answer refers to; its absence means the state and the decision disagree (a bug). */
export const required = <T>(value: T | null | undefined): T => {
  if (value === null || value === undefined) throw new Error('state lacks the record the decision relied on');
  return value;
};

export const seqAnswer = (at: Recorded) => ({ status: 200 as const, result: { seq: at.seq }, at });

export const createConversation = conversationCommand('createConversation', {
  // A user the other one blocks cannot start (or re-open) a direct conversation with them.
  before: async (services, { actor, body }) => {
    const others = [...new Set(body.members)].filter((m) => m !== actor.userId);
    const other = others[0];
    if (body.kind === 'direct' && others.length === 1 && other !== undefined)
      await requireNotBlocked(services, actor, other);
  },
  command: ({ actor, body }) => {
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
    return {
      conversationId,
      command: {
        type: 'StartConversation',
        data: {
          conversationId,
          kind: body.kind,
          members: body.members,
          title: body.title ?? null,
          createdBy: actor.userId,
        },
      },
    };
  },
  answer: (state, appended) => {
    const { conversationId, at } = required(state.started);
    return { status: appended ? 201 : 200, result: { conversationId, seq: at.seq }, at };
  },
});

export const addMember = conversationCommand('addMember', {
  command: ({ actor, params, body }) => ({
    conversationId: params.conversationId,
    command: { type: 'AddMember', data: { userId: body.userId, addedBy: actor.userId } },
  }),
  answer: (state, _appended, { body }) => seqAnswer(required(state.members.get(body.userId))),
});

export const removeMember = conversationCommand('removeMember', {
  command: ({ actor, params }) => ({
    conversationId: params.conversationId,
    command: { type: 'RemoveMember', data: { userId: params.userId, removedBy: actor.userId } },
  }),
  answer: (_state, appended) => seqAnswer(required(appended)),
});

export const sendMessage = conversationCommand('sendMessage', {
  // Direct conversation ids are version-5 UUIDs (no group may have one): only they pay the block check.
  before: async (services, { actor, params }) => {
    if (uuidVersion(params.conversationId) !== DIRECT_CONVERSATION_ID_VERSION) return;
    const peer = await services.writer.execute(
      params.conversationId,
      { type: 'RequireMember', data: { userId: actor.userId } },
      metadataOf(actor),
      (state) => state.started?.members.find((m) => m !== actor.userId),
    );
    if (peer !== undefined) await requireNotBlocked(services, actor, peer);
  },
  command: ({ actor, params, body, now }) => ({
    conversationId: params.conversationId,
    command: {
      type: 'SendMessage',
      data: {
        messageId: body.messageId,
        senderId: actor.userId,
        body: body.body,
        replyTo: body.replyTo ?? null,
        threadRootId: body.threadRootId ?? null,
        now,
      },
    },
  }),
  answer: (state, appended, { params, body }) => {
    const message = required(state.messages.get(body.messageId));
    return {
      status: appended ? 201 : 200,
      result: {
        messageId: body.messageId,
        conversationId: params.conversationId,
        seq: message.at.seq,
        sentAt: message.sentAt,
      },
      at: message.at,
    };
  },
});

export const editMessage = conversationCommand('editMessage', {
  command: ({ actor, params, body, now }) => ({
    conversationId: params.conversationId,
    command: {
      type: 'EditMessage',
      data: { messageId: params.messageId, editorId: actor.userId, body: body.body, now },
    },
  }),
  answer: (_state, appended) => seqAnswer(required(appended)),
});

export const deleteMessage = conversationCommand('deleteMessage', {
  command: ({ actor, params, now }) => ({
    conversationId: params.conversationId,
    command: { type: 'DeleteMessage', data: { messageId: params.messageId, deletedBy: actor.userId, now } },
  }),
  answer: (state, _appended, { params }) =>
    seqAnswer(required(state.messages.get(params.messageId)?.deleted)),
});

/**
 * A reaction taken or taken back; the answer is the event that last set the caller's reaction, or the
 * message itself when there was none (a removal of a reaction never added).
 */
const reactionCommand = (name: 'addReaction' | 'removeReaction', type: 'AddReaction' | 'RemoveReaction') =>
  conversationCommand(name, {
    command: ({ actor, params, now }) => ({
      conversationId: params.conversationId,
      command: {
        type,
        data: { messageId: params.messageId, userId: actor.userId, reaction: params.reaction, now },
      },
    }),
    answer: (state, _appended, { actor, params }) => {
      const message = required(state.messages.get(params.messageId));
      return seqAnswer(message.reactions?.get(params.reaction)?.get(actor.userId)?.at ?? message.at);
    },
  });

export const addReaction = reactionCommand('addReaction', 'AddReaction');
export const removeReaction = reactionCommand('removeReaction', 'RemoveReaction');

export const markRead = conversationCommand('markRead', {
  command: ({ actor, params, body, now }) => ({
    conversationId: params.conversationId,
    command: { type: 'MarkRead', data: { userId: actor.userId, upToSeq: body.upToSeq, now } },
  }),
  // A watermark that did not move appended nothing: the answer has no position (API.md §2.3).
  answer: (state, appended, { actor }) => ({
    status: 200,
    result: { readSeq: readWatermark(state, actor.userId) },
    at: appended,
  }),
});

export const typing = conversationCommand('typing', {
  command: ({ actor, params, now }) => ({
    conversationId: params.conversationId,
    command: { type: 'StartTyping', data: { userId: actor.userId, now } },
  }),
  answer: (_state, appended) => ({ status: 202, result: { throttled: appended === null }, at: null }),
});

export const mute = conversationCommand('mute', {
  command: ({ actor, params, body }) => ({
    conversationId: params.conversationId,
    command: { type: 'Mute', data: { userId: actor.userId, until: body.until } },
  }),
  answer: (_state, appended) => ({ status: 200, result: {}, at: required(appended) }),
});

/**
 * Decided on the user's own stream (its expected revision, so two instances cannot both set a level),
 * after the conversation's writer found the user a member: 404 for anyone else, before anything else.
 */
export const setNotificationLevel = defineCommand(
  commandShapes.setNotificationLevel,
  async (services, actor, { conversationId }, { level }) => {
    const { userId } = actor;
    await services.writer.execute(
      conversationId,
      { type: 'RequireMember', data: { userId } },
      metadataOf(actor),
      () => null,
    );
    const at = await services.users.execute(
      userId,
      { type: 'SetNotificationLevel', data: { userId, conversationId, level } },
      metadataOf(actor),
      // A repeat answers with the event that set the level earlier.
      (state) => required(state.levels.get(conversationId)).at,
    );
    return { status: 200 as const, result: { position: at.position } };
  },
);

/** Every command this service owns (readNotifications is registered by the notifications plugin). */
export const conversationCommands: readonly RegisteredCommand[] = [
  createConversation,
  addMember,
  removeMember,
  sendMessage,
  editMessage,
  deleteMessage,
  addReaction,
  removeReaction,
  markRead,
  typing,
  mute,
  setNotificationLevel,
];
