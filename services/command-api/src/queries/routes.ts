import {
  createReadModelDb,
  getConversation,
  InvalidCursorError,
  isMember,
  listConversations,
  listMessages,
  unreadSummary,
} from '@chat/db';
import {
  adminStreamParams,
  adminStreamQuery,
  ChatError,
  conversationParams,
  getConversationQuery,
  listConversationsQuery,
  listMessagesQuery,
  unreadQuery,
} from '@chat/events';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ReadModelFreshness } from './freshness.js';

export type QueryRoutesOptions = {
  /** `minPosition` wait (API.md: at most 2 s, then answer with `X-Read-Model-Stale: true`). */
  minPositionWaitMs?: number;
};

const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
const lastMessage = z.object({
  messageId: z.string(),
  senderId: z.string(),
  preview: z.string(),
  sentAt: z.string(),
  seq: z.number(),
  deleted: z.boolean(),
});
const conversation = z.object({
  conversationId: z.string(),
  kind: z.enum(['direct', 'group']),
  title: z.string().nullable(),
  createdBy: z.string(),
  members: z.array(z.string()),
  createdAt: z.string(),
  lastActivityAt: z.string(),
  lastSeq: z.number(),
  readSeq: z.number(),
  unreadCount: z.number(),
  mutedUntil: z.string().nullable(),
  lastMessage: lastMessage.nullable(),
});
const message = z.object({
  messageId: z.string(),
  conversationId: z.string(),
  seq: z.number(),
  senderId: z.string(),
  body: z.string().nullable(),
  replyTo: z.string().nullable(),
  sentAt: z.string(),
  editedAt: z.string().nullable(),
  deleted: z.boolean(),
});
const envelope = z.object({
  id: z.string(),
  type: z.string(),
  streamId: z.string(),
  revision: z.number(),
  position: z.string(),
  occurredAt: z.string(),
  data: z.record(z.string(), z.unknown()),
  metadata: z.record(z.string(), z.unknown()),
});
const errors = { 400: errorBody, 401: errorBody, 404: errorBody };

const notFound = () => new ChatError('not_found', 'conversation not found');

/**
 * API.md §2.4 queries served from the projector's read models, and §2.5 the admin stream read.
 * Non-members get 404 exactly like unknown conversations, admins included.
 */
export const queryRoutes: FastifyPluginAsyncZod<QueryRoutesOptions> = async (app, options) => {
  const waitMs = options.minPositionWaitMs ?? 2000;
  const db = createReadModelDb(app.pool);
  const freshness = new ReadModelFreshness(db);

  /** Waits for `minPosition`; on timeout the answer goes out anyway, marked stale. */
  const awaitPosition = async (minPosition: string | undefined, reply: FastifyReply): Promise<void> => {
    if (minPosition === undefined) return;
    if (!(await freshness.waitFor(minPosition, waitMs))) reply.header('x-read-model-stale', 'true');
  };

  app.get(
    '/v1/conversations',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['queries'],
        summary: 'Your conversations, most recent activity first',
        querystring: listConversationsQuery,
        response: {
          200: z.object({ items: z.array(conversation), nextCursor: z.string().nullable() }),
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const { limit, cursor, minPosition } = request.query;
      await awaitPosition(minPosition, reply);
      try {
        return await listConversations(db, request.user.userId, { limit, cursor });
      } catch (err) {
        if (!(err instanceof InvalidCursorError)) throw err;
        throw new ChatError(
          'validation_failed',
          'invalid querystring',
          [{ path: ['cursor'], message: err.message }],
          {
            cause: err,
          },
        );
      }
    },
  );

  app.get(
    '/v1/conversations/:id',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['queries'],
        summary: 'One conversation as you see it',
        params: conversationParams,
        querystring: getConversationQuery,
        response: { 200: conversation, ...errors },
      },
    },
    async (request, reply) => {
      await awaitPosition(request.query.minPosition, reply);
      const found = await getConversation(db, request.user.userId, request.params.id);
      if (!found) throw notFound();
      return found;
    },
  );

  app.get(
    '/v1/conversations/:id/messages',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['queries'],
        summary: 'A page of messages in ascending seq (before/after paging)',
        params: conversationParams,
        querystring: listMessagesQuery,
        response: { 200: z.object({ items: z.array(message), hasMore: z.boolean() }), ...errors },
      },
    },
    async (request, reply) => {
      const { before, after, limit, minPosition } = request.query;
      await awaitPosition(minPosition, reply);
      if (!(await isMember(db, request.params.id, request.user.userId))) throw notFound();
      return listMessages(db, request.params.id, { before, after, limit });
    },
  );

  app.get(
    '/v1/unread',
    {
      onRequest: app.authenticate,
      schema: {
        tags: ['queries'],
        summary: 'Your total unread count and how many conversations have unread messages',
        querystring: unreadQuery,
        response: { 200: z.object({ total: z.number(), conversations: z.number() }), 401: errorBody },
      },
    },
    async (request, reply) => {
      await awaitPosition(request.query.minPosition, reply);
      return unreadSummary(db, request.user.userId);
    },
  );

  app.get(
    '/v1/admin/streams/:streamId',
    {
      onRequest: app.requireAdmin,
      schema: {
        tags: ['admin'],
        summary: 'Raw events of one stream (role admin)',
        params: adminStreamParams,
        querystring: adminStreamQuery,
        response: {
          200: z.object({ events: z.array(envelope) }),
          400: errorBody,
          401: errorBody,
          403: errorBody,
        },
      },
    },
    async (request) => {
      const { fromRevision, limit } = request.query;
      const events = await app.store.readStream(request.params.streamId, { fromRevision, maxCount: limit });
      return { events };
    },
  );
};
