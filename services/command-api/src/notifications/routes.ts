import { ChatError, queryShapes } from '@chat/events';
import { decodeCursor, encodeCursor, listNotifications, readCheckpoint } from '@chat/notifications';
import { sleep } from '@chat/platform';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type pg from 'pg';
import { registerCommandRoute } from '../commands/routes.js';
import { routeOf } from '../plugins/route-schema.js';
import { readNotificationsCommand } from './read-command.js';

export type NotificationRoutesOptions = {
  /** `minPosition` wait on GET (API.md: at most 2 s). */
  minPositionWaitMs?: number;
  /** How long POST .../read waits for the notifier to report the exact `updated`. */
  readWaitMs?: number;
};

/** True once the notifier's checkpoint has reached `position` (positions order as strings). */
const waitForNotifier = async (pool: pg.Pool, position: string, waitMs: number): Promise<boolean> => {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const checkpoint = await readCheckpoint(pool);
    if (checkpoint !== null && checkpoint >= position) return true;
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
};

/** API.md §2.4 notifications: the list (notifier read model) and the read command. */
export const notificationRoutes: FastifyPluginAsyncZod<NotificationRoutesOptions> = async (app, options) => {
  const minPositionWaitMs = options.minPositionWaitMs ?? 2000;
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
      if (minPosition !== undefined && !(await waitForNotifier(app.pool, minPosition, minPositionWaitMs))) {
        reply.header('x-read-model-stale', 'true');
      }
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
