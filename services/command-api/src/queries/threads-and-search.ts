import { EmptySearchQueryError, isMember, listThreadMessages, searchMessages } from '@chat/db';
import { ChatError, decodeSearchCursor, searchShapes, threadShapes } from '@chat/events';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { routeOf } from '../plugins/route-schema.js';

const notFound = (what = 'conversation') => new ChatError('not_found', `${what} not found`);

/**
 * Issue 16: a thread's page (GET …/threads/{rootId}/messages) and message search (GET /v1/search), both
 * from the projector's read models. Non-members get 404 on the thread route like on every conversation
 * route; search finds nothing in conversations the caller is not a member of.
 */
export const threadAndSearchRoutes: FastifyPluginAsyncZod = async (app) => {
  const { db, awaitPosition } = app.readModel;

  app.addHook('onRequest', app.authenticate);

  app.route({
    ...routeOf(threadShapes.listThreadMessages),
    handler: async (request, reply) => {
      const { before, after, limit, minPosition } = request.query;
      const { conversationId, rootId } = request.params;
      await awaitPosition(minPosition, reply);
      if (!(await isMember(db, conversationId, request.user.userId))) throw notFound();
      const page = await listThreadMessages(db, conversationId, rootId, { before, after, limit });
      if (!page) throw notFound('thread root message');
      return page;
    },
  });

  app.route({
    ...routeOf(searchShapes.search),
    handler: async (request, reply) => {
      const { q, conversationId, from, limit, cursor, minPosition } = request.query;
      await awaitPosition(minPosition, reply);
      try {
        return await searchMessages(db, request.user.userId, {
          q,
          conversationId,
          from,
          limit,
          cursor: cursor === undefined ? undefined : (decodeSearchCursor(cursor) ?? undefined),
        });
      } catch (err) {
        if (!(err instanceof EmptySearchQueryError)) throw err;
        throw new ChatError(
          'validation_failed',
          'invalid querystring',
          [{ path: ['q'], message: err.message }],
          {
            cause: err,
          },
        );
      }
    },
  });
};
