import { EventRejectedError, runConsumer } from '@chat/consumer';
import type { ChatEvent, EventType, NatsSubjects, Notification, UserChannelMessage } from '@chat/events';
import { isEventType, parseEvent } from '@chat/events';
import type { EventStore, RecordedEvent } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import type { Pool, PoolClient } from 'pg';
import type { Registry } from 'prom-client';
import { type ConversationState, evolve, muteUntil, startedState } from './domain/conversation.js';
import { notificationIdFor } from './domain/notification-id.js';
import {
  type NotificationRecord,
  notificationsFor,
  previewAfter,
  reactionNotificationFor,
} from './domain/rules.js';
import { createNotificationMetrics } from './metrics.js';
import { loadConversations, StateChanges } from './store/conversations.js';
import {
  erasePreviews,
  insertNotifications,
  markRead,
  NOTIFIER_CONSUMER,
  pruneReadResults,
  setBlock,
  updatePreview,
  withoutBlocked,
} from './store/notifications.js';
import { enqueueDeliveries } from './store/outbox.js';

const READ_RESULT_MAX_AGE_SECONDS = 3600;
const PRUNE_EVERY_MS = 60_000;

/** The notifier's leader lock. */
export const NOTIFIER_LOCK = 'notifier';

export type NotificationConsumerDeps = {
  store: EventStore;
  pool: Pool;
  logger: Logger;
  /** Metrics `notifier_…` (the runtime's and the records'). */
  registry?: Registry;
  subjects: NatsSubjects;
  /** Live push; called after commit. */
  publish: (subject: string, message: UserChannelMessage) => void;
  /** Write webhook deliveries to the outbox (WEBHOOK_URL set). */
  webhook: boolean;
  /** Called after a commit that enqueued deliveries, so the worker need not wait for its poll. */
  onEnqueued?: () => void;
  batchSize: number;
  /** Wait after a partial batch so the next one gathers more (see `lingerAfter`); 0 = none. */
  lingerMs?: number;
  leaderRetryMs?: number;
  /** Conversations kept in memory between batches. */
  cacheSize?: number;
};

/** The webhook body: stable bytes per delivery, so the signature and the delivery id never change. */
export const webhookPayload = (recipientId: string, notification: Notification): string =>
  JSON.stringify({
    type: 'notification',
    deliveryId: notification.notificationId,
    recipientId,
    notification,
  });

const toNotification = (r: NotificationRecord): Notification => ({
  notificationId: r.notificationId,
  kind: r.kind,
  conversationId: r.conversationId,
  messageId: r.messageId,
  actorId: r.actorId,
  preview: r.preview,
  erased: r.preview === null,
  createdAt: r.createdAt,
  readAt: r.readAt,
});

/** Which event types the notifier applies: a new event type is a compile error here until decided. */
const HANDLED: Record<EventType, boolean> = {
  ConversationStarted: true,
  MemberJoined: true,
  MemberLeft: true,
  MessageSent: true,
  MessageEdited: true,
  MessageDeleted: true,
  ReactionAdded: true,
  ReactionRemoved: false,
  ConversationMuted: true,
  NotificationLevelSet: true,
  NotificationsRead: true,
  ConversationRead: false,
  TypingStarted: false,
  // Moderation notifies no one (a ban comes with the MemberLeft the notifier applies).
  MemberRoleChanged: false,
  MemberBanned: false,
  MemberUnbanned: false,
  MessageReported: false,
  ReportResolved: false,
  // Blocks notify no one either, but silence what the blocked user does towards the blocker.
  UserBlocked: true,
  UserUnblocked: true,
  UserErased: true,
};

type Parsed = { event: ChatEvent; recorded: RecordedEvent };

/**
 * Parses the events the notifier applies (the store has upcast them). The schemas hold every value
 * to what the notifier stores (storable text, instants 1970–9999), so an event that fails is one it
 * cannot apply: it is named, and the runtime sets it aside without searching for it. An event is parsed
 * once: `withoutWrites` and then `applyBatch` see the same objects.
 */
const parsedEvents = new WeakMap<RecordedEvent, ChatEvent>();
const parse = (batch: readonly RecordedEvent[]): Parsed[] => {
  const out: Parsed[] = [];
  for (const recorded of batch) {
    if (!isEventType(recorded.type) || !HANDLED[recorded.type]) continue;
    let event = parsedEvents.get(recorded);
    if (!event) {
      try {
        event = parseEvent(recorded.type, recorded.data);
      } catch (cause) {
        throw new EventRejectedError(recorded, 'its data does not match the schema', { cause });
      }
      parsedEvents.set(recorded, event);
    }
    out.push({ event, recorded });
  }
  return out;
};

/**
 * Tails the event log and turns it into notification records, a client of the consumer runtime. Each
 * batch is applied in ONE transaction together with the checkpoint, so a crash at any point replays the
 * batch from the last committed checkpoint and the deterministic ids make nothing appear twice:
 * exactly-once records. One leader at a time (lock `notifier`).
 */
export const createNotificationConsumer = (deps: NotificationConsumerDeps) => {
  const logger = deps.logger.child({ component: 'notifications' });
  const metrics = createNotificationMetrics(deps.registry);
  // Conversation state, valid only while this process is the single writer of the notifier tables:
  // dropped whenever a transaction fails and whenever this instance (again) becomes the leader.
  const cache = new Map<string, ConversationState>();
  let prunedAt = 0;

  const applyBatch = async (
    batch: readonly RecordedEvent[],
    client: PoolClient,
  ): Promise<NotificationRecord[]> => {
    const events = parse(batch);
    const needed = new Set<string>();
    for (const { event } of events) {
      if (
        (event.type === 'MessageSent' || event.type === 'ReactionAdded') &&
        !cache.has(event.data.conversationId)
      )
        needed.add(event.data.conversationId);
    }
    for (const state of await loadConversations(client, [...needed])) cache.set(state.conversationId, state);

    const changes = new StateChanges();
    const created: NotificationRecord[] = [];
    let pending: NotificationRecord[] = [];
    // Inserts are gathered into one multi-row statement; anything that reads or updates records
    // (an edit, a delete, a read) first flushes them, so it sees every earlier message of the batch.
    const flush = async () => {
      if (pending.length === 0) return;
      // Blocks change only after a flush, so every pending record is judged by the blocks of its time.
      const allowed = await withoutBlocked(client, pending);
      pending = [];
      const inserted = await insertNotifications(client, allowed);
      if (inserted.length === 0) return;
      created.push(...inserted);
      if (deps.webhook) {
        await enqueueDeliveries(
          client,
          inserted.map((r) => ({
            deliveryId: r.notificationId,
            recipientId: r.recipientId,
            payload: webhookPayload(r.recipientId, toNotification(r)),
          })),
        );
      }
    };

    for (const { event, recorded } of events) {
      switch (event.type) {
        case 'ConversationStarted': {
          const state = startedState(event.data);
          cache.set(state.conversationId, state);
          changes.conversationStarted(state.conversationId, state.kind, state.members);
          break;
        }
        case 'MemberJoined':
        case 'MemberLeft': {
          const state = cache.get(event.data.conversationId);
          if (state) evolve(state, event);
          changes.member(event.data.conversationId, event.data.userId, event.type === 'MemberJoined');
          break;
        }
        case 'ConversationMuted': {
          const state = cache.get(event.data.conversationId);
          if (state) evolve(state, event);
          changes.mute(event.data.conversationId, event.data.userId, muteUntil(event.data.until));
          break;
        }
        case 'NotificationLevelSet': {
          const state = cache.get(event.data.conversationId);
          if (state) evolve(state, event);
          changes.level(event.data.conversationId, event.data.userId, event.data.level);
          break;
        }
        case 'MessageSent': {
          const state = cache.get(event.data.conversationId);
          if (!state) {
            logger.warn(
              { conversationId: event.data.conversationId, position: recorded.position },
              'message in a conversation the notifier never saw start; skipped',
            );
            break;
          }
          pending.push(...notificationsFor(state, event.data, notificationIdFor));
          break;
        }
        case 'ReactionAdded': {
          const state = cache.get(event.data.conversationId);
          if (state) pending.push(...reactionNotificationFor(state, event.data, notificationIdFor));
          break;
        }
        case 'MessageEdited':
        case 'MessageDeleted':
          await flush();
          await updatePreview(client, event.data.conversationId, event.data.messageId, previewAfter(event));
          break;
        case 'NotificationsRead':
          await flush();
          await markRead(client, recorded.id, {
            userId: event.data.userId,
            notificationIds: event.data.notificationIds,
            upTo: event.data.upTo,
          });
          break;
        case 'UserErased':
          await flush();
          await erasePreviews(client, event.data.userId);
          break;
        case 'ReactionRemoved':
        case 'ConversationRead':
        case 'TypingStarted':
        case 'MemberRoleChanged':
        case 'MemberBanned':
        case 'MemberUnbanned':
        case 'MessageReported':
        case 'ReportResolved':
          break;
        case 'UserBlocked':
        case 'UserUnblocked':
          await flush();
          await setBlock(client, event.data.userId, event.data.blockedUserId, event.type === 'UserBlocked');
          break;
        default: {
          const never: never = event;
          return never;
        }
      }
    }
    await flush();
    await changes.write(client);
    return created;
  };

  /**
   * Judged before any transaction, from the cached state: `[]` when applying the batch writes nothing —
   * every event is one the notifier ignores, or a message or reaction in a conversation it holds that
   * notifies no one (a group message that addresses nobody). Anything else — a state change, an edit, a
   * read, a conversation to load, an event failing its schema — is applied in a transaction.
   */
  const withoutWrites = (batch: readonly RecordedEvent[]): NotificationRecord[] | undefined => {
    let events: Parsed[];
    try {
      events = parse(batch);
    } catch {
      return undefined;
    }
    for (const { event } of events) {
      if (event.type === 'MessageSent') {
        const state = cache.get(event.data.conversationId);
        if (!state || notificationsFor(state, event.data, notificationIdFor).length > 0) return undefined;
      } else if (event.type === 'ReactionAdded') {
        const state = cache.get(event.data.conversationId);
        if (!state || reactionNotificationFor(state, event.data, notificationIdFor).length > 0)
          return undefined;
      } else return undefined;
    }
    return [];
  };

  const push = (records: readonly NotificationRecord[]): void => {
    for (const r of records) {
      try {
        deps.publish(deps.subjects.user(r.recipientId), {
          type: 'notification',
          notification: toNotification(r),
        });
      } catch (err) {
        // Live push is best effort; the record is stored and listed by GET /v1/notifications.
        metrics.pushFailures.inc();
        logger.warn({ err, notificationId: r.notificationId }, 'live push failed');
      }
    }
  };

  const afterCommit = async (created: NotificationRecord[]): Promise<void> => {
    const max = deps.cacheSize ?? 10_000;
    for (const key of cache.keys()) {
      if (cache.size <= max) break;
      cache.delete(key);
    }
    if (Date.now() - prunedAt > PRUNE_EVERY_MS) {
      prunedAt = Date.now();
      await pruneReadResults(deps.pool, READ_RESULT_MAX_AGE_SECONDS).catch((err: unknown) => {
        logger.warn({ err }, 'could not prune read results');
      });
    }
    if (created.length === 0) return;
    metrics.created(created);
    push(created);
    if (deps.webhook) deps.onEnqueued?.();
  };

  return {
    run: (signal: AbortSignal): Promise<void> =>
      runConsumer<NotificationRecord[]>(
        {
          name: NOTIFIER_CONSUMER,
          store: deps.store,
          pool: deps.pool,
          logger,
          batchSize: deps.batchSize,
          lingerMs: deps.lingerMs ?? 0,
          lockName: NOTIFIER_LOCK,
          ...(deps.leaderRetryMs === undefined ? {} : { leaderRetryMs: deps.leaderRetryMs }),
          ...(deps.registry ? { metrics: { registry: deps.registry, prefix: 'notifier' } } : {}),
          onStart: () => cache.clear(),
          checkpoint: 'in-transaction',
          applyBatch,
          withoutWrites,
          rolledBack: () => cache.clear(),
          afterCommit,
        },
        signal,
      ),
  };
};
