import { usersInBlockWith, usersSharingConversation } from '@chat/db';
import {
  isOnline,
  type PresenceRecord,
  parsePresenceRecord,
  presenceGatewayKey,
  presenceUserKey,
  queryShapes,
  type UserPresence,
} from '@chat/events';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { KV } from 'nats';
import { routeOf } from '../plugins/route-schema.js';

/**
 * GET /v1/presence (API.md §2.4): reads the presence records the ws-gateways keep in JetStream KV.
 * Only users sharing a conversation with the caller are reported; others read as `unknown`, so the
 * endpoint reveals nothing about strangers.
 */
export const presenceRoutes: FastifyPluginAsyncZod = async (app) => {
  const { db, awaitPosition } = app.readModel;
  let kv: Promise<KV> | undefined;
  const bucket = () => {
    kv ??= app.nats.jetstream().views.kv(app.subjects.presenceBucket, { history: 1 });
    kv.catch(() => {
      kv = undefined;
    });
    return kv;
  };

  app.route({
    ...routeOf(queryShapes.presence),
    onRequest: app.authenticate,
    handler: async (request, reply) => {
      const { userIds, minPosition } = request.query;
      await awaitPosition(minPosition, reply);
      const [shared, blocked] = await Promise.all([
        usersSharingConversation(db, request.user.userId, userIds),
        // Presence is not revealed across a block, whoever blocked whom (issue 16).
        usersInBlockWith(db, request.user.userId, userIds),
      ]);
      const store = await bucket();
      const heartbeats = new Map<string, number>();
      const heartbeatOf = async (gatewayId: string) => {
        if (!heartbeats.has(gatewayId)) {
          const e = await store.get(presenceGatewayKey(gatewayId));
          const at = e && e.operation === 'PUT' ? Number((e.json() as { at?: number }).at ?? 0) : 0;
          heartbeats.set(gatewayId, at);
        }
        return heartbeats.get(gatewayId);
      };
      const users = await Promise.all(
        userIds.map(async (userId): Promise<UserPresence> => {
          if (!shared.has(userId) || blocked.has(userId))
            return { userId, status: 'unknown', lastSeenAt: null };
          const e = await store.get(presenceUserKey(userId));
          const record: PresenceRecord = parsePresenceRecord(
            e && e.operation === 'PUT' ? e.string() : undefined,
          );
          for (const gw of Object.keys(record.g)) await heartbeatOf(gw);
          const online = isOnline(record, (gw) => heartbeats.get(gw), Date.now());
          return {
            userId,
            status: online ? 'online' : 'offline',
            lastSeenAt: online ? null : record.lastSeenAt,
          };
        }),
      );
      return { users };
    },
  });
};
