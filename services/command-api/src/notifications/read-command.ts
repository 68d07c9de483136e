import { randomUUID } from 'node:crypto';
import {
  CURRENT_SCHEMA_VERSION,
  commandShapes,
  type ReadNotificationsBody,
  type ReadNotificationsResult,
  userStream,
} from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import { countReadable, type ReadSelection, readResult } from '@chat/notifications';
import { sleep } from '@chat/platform';
import type pg from 'pg';
import { type Actor, type Clock, defineCommand } from '../commands/catalogue.js';

export type ReadNotificationsDeps = {
  store: EventStore;
  pool: pg.Pool;
  clock: Clock;
  /** How long the command waits for the notifier to apply its event before answering an estimate. */
  waitMs: number;
};

const POLL_MS = 10;

/**
 * `POST /v1/notifications/read` (also `<prefix>.cmd.readNotifications`). Appends `NotificationsRead`
 * to the caller's user stream; the notifier applies it. `updated` is exact: the notifier stores, per
 * event, how many of the caller's records it moved from unread to read, and the command waits briefly
 * for that. If the notifier lags beyond `waitMs`, the answer is the count of matching unread records
 * seen just before the append — the same records unless new ones arrive in between.
 */
export const readNotifications = async (
  deps: ReadNotificationsDeps,
  actor: Actor,
  body: ReadNotificationsBody,
): Promise<ReadNotificationsResult> => {
  const selection: ReadSelection = {
    userId: actor.userId,
    notificationIds: 'all' in body ? null : [...new Set(body.notificationIds)],
    upTo: deps.clock.now().toISOString(),
  };
  const estimate = await countReadable(deps.pool, selection);
  const eventId = randomUUID();
  const { position } = await deps.store.append(
    userStream(actor.userId),
    [
      {
        id: eventId,
        type: 'NotificationsRead',
        data: { userId: selection.userId, notificationIds: selection.notificationIds, upTo: selection.upTo },
        metadata: {
          userId: actor.userId,
          correlationId: actor.correlationId,
          causationId: actor.causationId,
          schemaVersion: CURRENT_SCHEMA_VERSION,
        },
      },
    ],
    'any',
  );
  const deadline = Date.now() + deps.waitMs;
  for (;;) {
    const updated = await readResult(deps.pool, eventId);
    if (updated !== undefined) return { updated, position };
    if (Date.now() >= deadline) return { updated: estimate, position };
    await sleep(POLL_MS);
  }
};

/** The same operation as a registered command, served over NATS request/reply (the gateway's path). */
export const readNotificationsCommand = (deps: ReadNotificationsDeps) =>
  defineCommand(commandShapes.readNotifications, async (_services, actor, _params, body) => ({
    status: 200 as const,
    result: await readNotifications(deps, actor, body),
  }));
