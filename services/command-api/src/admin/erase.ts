import { adminShapes, ChatError, type ChatEvent, CURRENT_SCHEMA_VERSION, streamIdOf } from '@chat/events';
import type { DataKeyStore } from '@chat/eventstore';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { storeUnavailable } from '../commands/conversation-aggregate.js';
import { eventId } from '../commands/ids.js';
import { routeOf } from '../plugins/route-schema.js';

export type EraseRoutesOptions = { dataKeys: DataKeyStore | undefined };

/**
 * `POST /v1/admin/users/{userId}/erase` (README "Erasure"): destroys the user's data key, then appends
 * `UserErased` to their stream under an id derived from the user, so a repeat (or a retry after a crash
 * between the two steps) appends nothing and answers the first erasure's time and position.
 */
export const eraseRoutes: FastifyPluginAsyncZod<EraseRoutesOptions> = async (app, options) => {
  app.route({
    ...routeOf(adminShapes.eraseUser),
    // The role is checked after the body is read (an oversized one is 413 for anyone, as on every
    // route that takes a body), the token before.
    onRequest: app.authenticate,
    preHandler: async (request) => {
      if (!request.user.roles.includes('admin')) throw new ChatError('forbidden', 'admin role required');
    },
    handler: async (request) => {
      const { dataKeys } = options;
      if (!dataKeys) throw new ChatError('unavailable', 'this command-api has no data keys configured');
      const { userId } = request.params;
      let erasedAt: string;
      try {
        ({ erasedAt } = await dataKeys.erase(userId));
      } catch (err) {
        throw new ChatError('unavailable', 'the key store is unavailable', undefined, { cause: err });
      }
      const event: ChatEvent = {
        type: 'UserErased',
        data: { userId, erasedBy: request.user.userId, erasedAt },
      };
      try {
        const { position } = await app.store.append(
          streamIdOf(event),
          [
            {
              id: eventId(event),
              type: event.type,
              data: event.data,
              metadata: {
                userId: request.user.userId,
                correlationId: request.id,
                causationId: null,
                schemaVersion: CURRENT_SCHEMA_VERSION,
              },
            },
          ],
          'any',
        );
        return { userId, erasedAt, position };
      } catch (err) {
        throw storeUnavailable(err);
      }
    },
  });
};
