import { START_POSITION_TEXT } from '@chat/db';
import { ChatError, queryShapes } from '@chat/events';
import { decodeCursor, encodeCursor, listNotifications, readCheckpoint } from '@chat/notifications';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { registerCommandRoute } from '../commands/routes.js';
import { routeOf } from '../plugins/route-schema.js';
import { positionAwaiter, ReadModelFreshness } from '../queries/freshness.js';
import { readNotificationsCommand } from './read-command.js';

export type NotificationRoutesOptions = {
  /** `minPosition` wait on GET (API.md: at most 2 s). */
  minPositionWaitMs?: number;
  /** How long POST .../read waits for the notifier to report the exact `updated`. */
  readWaitMs?: number;
};

/** API.md §2.4 notifications: the list (notifier read model) and the read command. */
export const notificationRoutes: FastifyPluginAsyncZod<NotificationRoutesOptions> = async (app, options) => {
  // The notifier's checkpoint, waited on as the query routes wait on the projection's.
  const notifier = new ReadModelFreshness(
    async () => (await readCheckpoint(app.pool)) ?? START_POSITION_TEXT,
  );
  const awaitPosition = positionAwaiter(notifier, options.minPositionWaitMs ?? 2000);
  const readDeps = { store: app.store, pool: app.pool, clock: app.clock, waitMs: options.readWaitMs ?? 1000 };
  const readCommand = readNotificationsCommand(readDeps);
  app.commands.register(readCommand);

  app.addHook('onRequest', app.authenticate);

  app.route({
    ...routeOf(queryShapes.listNotifications),
    handler: async (request, reply) => {
      const { cursor, limit, unreadOnly, minPosition } = request.query;
      const after = cursor === undefined ? null : decodeCursor(cursor);
      if (cursor !== undefined && after === null) {
        const message = 'not a cursor returned by the server';
        throw new ChatError('validation_failed', 'invalid querystring', [{ path: ['cursor'], message }]);
      }
      await awaitPosition(minPosition, reply);
      const page = await listNotifications(app.pool, {
        userId: request.user.userId,
        unreadOnly,
        limit,
        after,
      });
      const last = page.items.at(-1);
      return {
        items: page.items,
        nextCursor:
          page.hasMore && last
            ? encodeCursor({ createdAt: last.createdAt, notificationId: last.notificationId })
            : null,
      };
    },
  });

  registerCommandRoute(app, readCommand);
};
