import {
  getConversation,
  InvalidCursorError,
  isMember,
  listConversations,
  listMessages,
  unreadSummary,
} from '@chat/db';
import { ChatError, queryShapes } from '@chat/events';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { routeOf } from '../plugins/route-schema.js';

const notFound = () => new ChatError('not_found', 'conversation not found');

/**
 * API.md §2.4 queries served from the projector's read models, and §2.5 the admin stream read.
 * Non-members get 404 exactly like unknown conversations, admins included.
 */
export const queryRoutes: FastifyPluginAsyncZod = async (app) => {
  const { db, awaitPosition } = app.readModel;

  app.route({
    ...routeOf(queryShapes.listConversations),
    onRequest: app.authenticate,
    handler: async (request, reply) => {
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
  });

  app.route({
    ...routeOf(queryShapes.getConversation),
    onRequest: app.authenticate,
    handler: async (request, reply) => {
      await awaitPosition(request.query.minPosition, reply);
      const found = await getConversation(db, request.user.userId, request.params.conversationId);
      if (!found) throw notFound();
      return found;
    },
  });

  app.route({
    ...routeOf(queryShapes.listMessages),
    onRequest: app.authenticate,
    handler: async (request, reply) => {
      const { before, after, limit, includeThreads, minPosition } = request.query;
      const { conversationId } = request.params;
      await awaitPosition(minPosition, reply);
      if (!(await isMember(db, conversationId, request.user.userId))) throw notFound();
      return listMessages(db, conversationId, { before, after, limit, includeThreads });
    },
  });

  app.route({
    ...routeOf(queryShapes.unread),
    onRequest: app.authenticate,
    handler: async (request, reply) => {
      await awaitPosition(request.query.minPosition, reply);
      return unreadSummary(db, request.user.userId);
    },
  });

  app.route({
    ...routeOf(queryShapes.adminStream),
    onRequest: app.requireAdmin,
    handler: async (request) => {
      const { fromRevision, limit } = request.query;
      const events = await app.store.readStream(request.params.streamId, { fromRevision, maxCount: limit });
      return { events };
    },
  });
};
