import { ChatError, listNotificationsQuery, readNotificationsBody } from '@chat/events';
import { decodeCursor, encodeCursor, listNotifications, readCheckpoint } from '@chat/notifier';
import { sleep } from '@chat/platform';
import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type pg from 'pg';
import { z } from 'zod';
import type { Actor } from '../commands/catalogue.js';
import { readNotifications, readNotificationsCommand } from './read-command.js';

export type NotificationRoutesOptions = {
  /** `minPosition` wait on GET (API.md: at most 2 s). */
  minPositionWaitMs?: number;
  /** How long POST .../read waits for the notifier to report the exact `updated`. */
  readWaitMs?: number;
};

const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});
const notification = z.object({
  notificationId: z.string(),
  kind: z.enum(['message', 'mention']),
  conversationId: z.string(),
  messageId: z.string(),
  actorId: z.string(),
  preview: z.string(),
  createdAt: z.string(),
  readAt: z.string().nullable(),
});

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
  app.commands.register(readNotificationsCommand(readDeps));

  app.addHook('onRequest', app.authenticate);
  const actor = (request: FastifyRequest): Actor => ({
    userId: request.user.userId,
    roles: request.user.roles,
    correlationId: request.id,
    causationId: null,
  });

  app.get(
    '/v1/notifications',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Your notifications, newest first',
        querystring: listNotificationsQuery,
        response: {
          200: z.object({ items: z.array(notification), nextCursor: z.string().nullable() }),
          400: errorBody,
          401: errorBody,
        },
      },
    },
    async (request, reply) => {
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
  );

  app.post(
    '/v1/notifications/read',
    {
      schema: {
        tags: ['notifications'],
        summary: 'Mark notifications read (listed ids, or all)',
        body: readNotificationsBody,
        response: {
          200: z.object({ updated: z.number().int(), position: z.string() }),
          400: errorBody,
          401: errorBody,
        },
      },
    },
    async (request, reply) => {
      const result = await readNotifications(readDeps, actor(request), request.body);
      app.metrics.commands.inc({ command: 'readNotifications', transport: 'http', status: 200 });
      return reply.code(200).send(result);
    },
  );
};
