import { listBlocks, listReports, moderationView } from '@chat/db';
import { ChatError, moderationQueryShapes } from '@chat/events';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { routeOf } from '../plugins/route-schema.js';

/**
 * The read side of moderation and blocking (issue 16): the moderation queue (role admin), your block
 * list, and a conversation's roles and bans (members only; bans for the owner and admins).
 */
export const moderationQueryRoutes: FastifyPluginAsyncZod = async (app) => {
  const { db, awaitPosition } = app.readModel;

  app.route({
    ...routeOf(moderationQueryShapes.listReports),
    onRequest: app.requireAdmin,
    handler: async (request, reply) => {
      const { status, limit, cursor, minPosition } = request.query;
      await awaitPosition(minPosition, reply);
      return listReports(db, { status, limit, cursor });
    },
  });

  app.route({
    ...routeOf(moderationQueryShapes.listBlocks),
    onRequest: app.authenticate,
    handler: async (request, reply) => {
      await awaitPosition(request.query.minPosition, reply);
      return { items: await listBlocks(db, request.user.userId) };
    },
  });

  app.route({
    ...routeOf(moderationQueryShapes.getModeration),
    onRequest: app.authenticate,
    handler: async (request, reply) => {
      await awaitPosition(request.query.minPosition, reply);
      const view = await moderationView(db, request.params.conversationId, request.user.userId);
      if (!view) throw new ChatError('not_found', 'conversation not found');
      return view;
    },
  });
};
