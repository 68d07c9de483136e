import {
  addMemberBody,
  conversationParams,
  createConversationBody,
  editMessageBody,
  markReadBody,
  memberParams,
  messageParams,
  muteBody,
  sendMessageBody,
  typingBody,
} from '@chat/events';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  type Actor,
  addMember,
  type CommandOutcome,
  type CommandServices,
  createConversation,
  deleteMessage,
  editMessage,
  markRead,
  mute,
  removeMember,
  sendMessage,
  typing,
} from './catalogue.js';

export type CommandRoutesOptions = { services: CommandServices };

const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
const seqResult = z.object({ seq: z.number().int(), position: z.string() });
const errors = {
  400: errorBody,
  401: errorBody,
  403: errorBody,
  404: errorBody,
  409: errorBody,
  429: errorBody,
};
/** Body of DELETE routes and typing: none or `{}`. */
const emptyBody = typingBody.nullish();

/** The command routes of API.md §2.1–2.3; each calls the command definition NATS serves too. */
export const commandRoutes: FastifyPluginAsyncZod<CommandRoutesOptions> = async (app, { services }) => {
  app.addHook('onRequest', app.authenticate);

  const actor = (request: FastifyRequest): Actor => ({
    userId: request.user.userId,
    roles: request.user.roles,
    correlationId: request.id,
    causationId: null,
  });
  const answer = (reply: FastifyReply, name: string, outcome: CommandOutcome) => {
    app.metrics.commands.inc({ command: name, transport: 'http', status: outcome.status });
    return reply.code(outcome.status).send(outcome.result);
  };

  app.post(
    '/v1/conversations',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Start a conversation (direct ids are derived from the pair; idempotent)',
        body: createConversationBody,
        response: {
          200: z.object({ conversationId: z.string(), seq: z.number(), position: z.string() }),
          201: z.object({ conversationId: z.string(), seq: z.number(), position: z.string() }),
          ...errors,
        },
      },
    },
    async (request, reply) =>
      answer(
        reply,
        'createConversation',
        await createConversation.run(services, actor(request), {}, request.body),
      ),
  );

  app.post(
    '/v1/conversations/:id/members',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Add a member to a group',
        params: conversationParams,
        body: addMemberBody,
        response: { 200: seqResult, ...errors },
      },
    },
    async (request, reply) =>
      answer(
        reply,
        'addMember',
        await addMember.run(services, actor(request), { conversationId: request.params.id }, request.body),
      ),
  );

  app.delete(
    '/v1/conversations/:id/members/:userId',
    {
      schema: {
        tags: ['conversations'],
        summary: 'Remove a member (yourself, or anyone if you created the conversation)',
        params: memberParams,
        body: emptyBody,
        response: { 200: seqResult, ...errors },
      },
    },
    async (request, reply) =>
      answer(
        reply,
        'removeMember',
        await removeMember.run(
          services,
          actor(request),
          { conversationId: request.params.id, userId: request.params.userId },
          undefined,
        ),
      ),
  );

  app.post(
    '/v1/conversations/:id/messages',
    {
      schema: {
        tags: ['messages'],
        summary: 'Send a message (messageId is the idempotency key)',
        params: conversationParams,
        body: sendMessageBody,
        response: {
          200: z.object({
            messageId: z.string(),
            conversationId: z.string(),
            seq: z.number(),
            sentAt: z.string(),
            position: z.string(),
          }),
          201: z.object({
            messageId: z.string(),
            conversationId: z.string(),
            seq: z.number(),
            sentAt: z.string(),
            position: z.string(),
          }),
          ...errors,
        },
      },
    },
    async (request, reply) =>
      answer(
        reply,
        'sendMessage',
        await sendMessage.run(services, actor(request), { conversationId: request.params.id }, request.body),
      ),
  );

  app.patch(
    '/v1/conversations/:id/messages/:messageId',
    {
      schema: {
        tags: ['messages'],
        summary: 'Edit your message',
        params: messageParams,
        body: editMessageBody,
        response: { 200: seqResult, ...errors },
      },
    },
    async (request, reply) =>
      answer(
        reply,
        'editMessage',
        await editMessage.run(
          services,
          actor(request),
          { conversationId: request.params.id, messageId: request.params.messageId },
          request.body,
        ),
      ),
  );

  app.delete(
    '/v1/conversations/:id/messages/:messageId',
    {
      schema: {
        tags: ['messages'],
        summary: 'Delete your message (a tombstone in read models)',
        params: messageParams,
        body: emptyBody,
        response: { 200: seqResult, ...errors },
      },
    },
    async (request, reply) =>
      answer(
        reply,
        'deleteMessage',
        await deleteMessage.run(
          services,
          actor(request),
          { conversationId: request.params.id, messageId: request.params.messageId },
          undefined,
        ),
      ),
  );

  app.post(
    '/v1/conversations/:id/read',
    {
      schema: {
        tags: ['read state'],
        summary: 'Move your read watermark forward',
        params: conversationParams,
        body: markReadBody,
        response: { 200: z.object({ readSeq: z.number(), position: z.string().optional() }), ...errors },
      },
    },
    async (request, reply) =>
      answer(
        reply,
        'markRead',
        await markRead.run(services, actor(request), { conversationId: request.params.id }, request.body),
      ),
  );

  app.post(
    '/v1/conversations/:id/typing',
    {
      schema: {
        tags: ['read state'],
        summary: 'Signal typing (at most one event per user per conversation per 3 s)',
        params: conversationParams,
        body: emptyBody,
        response: { 202: z.object({ throttled: z.boolean() }), ...errors },
      },
    },
    async (request, reply) =>
      answer(
        reply,
        'typing',
        await typing.run(services, actor(request), { conversationId: request.params.id }, {}),
      ),
  );

  app.put(
    '/v1/conversations/:id/mute',
    {
      schema: {
        tags: ['read state'],
        summary: 'Mute until a time, or unmute with null',
        params: conversationParams,
        body: muteBody,
        response: { 200: z.object({ position: z.string() }), ...errors },
      },
    },
    async (request, reply) =>
      answer(
        reply,
        'mute',
        await mute.run(services, actor(request), { conversationId: request.params.id }, request.body),
      ),
  );
};
