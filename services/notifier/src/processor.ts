import type { ChatEvent, NatsSubjects, Notification, UserChannelMessage } from '@chat/events';
import { parseEvent, upcasters } from '@chat/events';
import type { EventStore, RecordedEvent } from '@chat/eventstore';
import { lingerAfter, START_POSITION } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import type { Pool, PoolClient } from 'pg';
import { type ConversationState, evolve, muteUntil, startedState } from './domain/conversation.js';
import { notificationsFor, previewAfter } from './domain/rules.js';
import type { NotifierMetrics } from './metrics.js';
import { notificationIdFor } from './notification-id.js';
import { loadConversations, StateChanges } from './store/conversations.js';
import {
  insertNotifications,
  markRead,
  pruneReadResults,
  readCheckpoint,
  type StoredRecord,
  updatePreview,
  writeCheckpoint,
} from './store/notifications.js';
import { enqueueDeliveries } from './store/outbox.js';

const READ_RESULT_MAX_AGE_SECONDS = 3600;

export type ProcessorOptions = {
  pool: Pool;
  store: EventStore;
  logger: Logger;
  metrics: NotifierMetrics;
  subjects: NatsSubjects;
  /** Live push; called after commit. */
  publish: (subject: string, message: UserChannelMessage) => void;
  notifyAllMaxMembers: number;
  /** Write webhook deliveries to the outbox (WEBHOOK_URL set). */
  webhook: boolean;
  /** Called after a commit that enqueued deliveries, so the worker need not wait for its poll. */
  onEnqueued?: () => void;
  batchSize: number;
  /** Wait after a partial batch so the next one gathers more (see `lingerAfter`); 0 = none. */
  lingerMs?: number;
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

const toNotification = (r: StoredRecord): Notification => ({
  notificationId: r.notificationId,
  kind: r.kind,
  conversationId: r.conversationId,
  messageId: r.messageId,
  actorId: r.actorId,
  preview: r.preview,
  createdAt: r.createdAt,
  readAt: r.readAt,
});

/**
 * Tails the event log and turns it into notification records. Each batch of events is applied in ONE
 * transaction together with the checkpoint, so a crash at any point replays the batch from the last
 * committed checkpoint and the deterministic ids make nothing appear twice: exactly-once records.
 * Run it under `runAsLeader`: one consumer at a time.
 */
export class NotificationProcessor {
  // Conversation state, valid only while this process is the single writer of the notifier tables;
  // it is dropped whenever a transaction fails and at every (re)start.
  readonly #cache = new Map<string, ConversationState>();
  readonly #options: ProcessorOptions;
  readonly #logger: Logger;
  #prunedAt = 0;

  constructor(options: ProcessorOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'processor' });
  }

  async run(signal: AbortSignal): Promise<void> {
    const { pool, store, batchSize, metrics } = this.#options;
    this.#cache.clear();
    const from = (await readCheckpoint(pool)) ?? START_POSITION;
    this.#logger.info({ from }, 'consuming the log');
    metrics.leader.set(1);
    try {
      for await (const batch of store.subscribeToAll({ fromPosition: from, batchSize, signal })) {
        if (batch.length > 0) await this.apply(batch);
        if (signal.aborted) break;
        await lingerAfter(batch.length, batchSize, this.#options.lingerMs ?? 0, signal);
      }
    } finally {
      metrics.leader.set(0);
    }
  }

  /** Applies one batch in one transaction, then pushes the new records live. */
  async apply(batch: readonly RecordedEvent[]): Promise<void> {
    const { pool, metrics } = this.#options;
    const started = process.hrtime.bigint();
    const client = await pool.connect();
    let created: StoredRecord[];
    try {
      await client.query('BEGIN');
      created = await this.#applyInTransaction(client, batch);
      await writeCheckpoint(client, batch[batch.length - 1]!.position);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      this.#cache.clear();
      throw new NotifierBatchError(`batch ending at ${batch[batch.length - 1]?.position} failed`, {
        cause: err,
      });
    } finally {
      client.release();
    }
    this.#trimCache();
    if (Date.now() - this.#prunedAt > 60_000) {
      this.#prunedAt = Date.now();
      await pruneReadResults(pool, READ_RESULT_MAX_AGE_SECONDS).catch((err: unknown) => {
        this.#logger.warn({ err }, 'could not prune read results');
      });
    }
    metrics.events.inc(batch.length);
    metrics.batchSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    metrics.lagSeconds.set(Math.max(0, Date.now() - Date.parse(batch[batch.length - 1]!.occurredAt)) / 1000);
    if (created.length > 0) {
      let mentions = 0;
      for (const r of created) if (r.kind === 'mention') mentions++;
      metrics.records.inc({ kind: 'mention' }, mentions);
      metrics.records.inc({ kind: 'message' }, created.length - mentions);
      metrics.recordsCreated(created.length);
      this.#push(created);
      if (this.#options.webhook) this.#options.onEnqueued?.();
    }
  }

  async #applyInTransaction(client: PoolClient, batch: readonly RecordedEvent[]): Promise<StoredRecord[]> {
    const events = this.#parse(batch);
    const needed = new Set<string>();
    for (const { event } of events) {
      if (event.type === 'MessageSent' && !this.#cache.has(event.data.conversationId))
        needed.add(event.data.conversationId);
    }
    for (const state of await loadConversations(client, [...needed])) {
      this.#cache.set(state.conversationId, state);
    }

    const changes = new StateChanges();
    const created: StoredRecord[] = [];
    let pending: StoredRecord[] = [];
    // Inserts are gathered into one multi-row statement; anything that reads or updates records
    // (an edit, a delete, a read) first flushes them, so it sees every earlier message of the batch.
    const flush = async () => {
      if (pending.length === 0) return;
      const inserted = await insertNotifications(client, pending);
      pending = [];
      if (inserted.length === 0) return;
      created.push(...inserted);
      if (this.#options.webhook) {
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
          this.#cache.set(state.conversationId, state);
          changes.conversationStarted(state.conversationId, state.kind, state.members);
          break;
        }
        case 'MemberJoined':
        case 'MemberLeft': {
          const state = this.#cache.get(event.data.conversationId);
          if (state) evolve(state, event);
          changes.member(event.data.conversationId, event.data.userId, event.type === 'MemberJoined');
          break;
        }
        case 'ConversationMuted': {
          const state = this.#cache.get(event.data.conversationId);
          if (state) evolve(state, event);
          changes.mute(event.data.conversationId, event.data.userId, muteUntil(event.data.until));
          break;
        }
        case 'MessageSent': {
          const state = this.#cache.get(event.data.conversationId);
          if (!state) {
            this.#logger.warn(
              { conversationId: event.data.conversationId, position: recorded.position },
              'message in a conversation the notifier never saw start; skipped',
            );
            break;
          }
          const records = notificationsFor(state, event.data, {
            notifyAllMaxMembers: this.#options.notifyAllMaxMembers,
            notificationIdFor,
          });
          for (const r of records) pending.push({ ...r, position: recorded.position });
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
        default:
          break;
      }
    }
    await flush();
    await changes.write(client);
    return created;
  }

  #parse(batch: readonly RecordedEvent[]): { event: ChatEvent; recorded: RecordedEvent }[] {
    const out: { event: ChatEvent; recorded: RecordedEvent }[] = [];
    for (const recorded of batch) {
      if (!RELEVANT.has(recorded.type)) continue;
      try {
        const upcast = upcasters.upcast(recorded);
        out.push({ event: parseEvent(upcast.type, upcast.data), recorded });
      } catch (err) {
        // A malformed stored event must not stop every later notification; it is logged and skipped.
        this.#logger.error(
          { err, position: recorded.position, type: recorded.type },
          'unreadable event skipped',
        );
      }
    }
    return out;
  }

  #push(records: readonly StoredRecord[]): void {
    const { publish, subjects, metrics } = this.#options;
    for (const r of records) {
      try {
        publish(subjects.user(r.recipientId), { type: 'notification', notification: toNotification(r) });
      } catch (err) {
        // Live push is best effort; the record is stored and listed by GET /v1/notifications.
        metrics.pushFailures.inc();
        this.#logger.warn({ err, notificationId: r.notificationId }, 'live push failed');
      }
    }
  }

  #trimCache(): void {
    const max = this.#options.cacheSize ?? 10_000;
    for (const key of this.#cache.keys()) {
      if (this.#cache.size <= max) break;
      this.#cache.delete(key);
    }
  }
}

const RELEVANT = new Set([
  'ConversationStarted',
  'MemberJoined',
  'MemberLeft',
  'MessageSent',
  'MessageEdited',
  'MessageDeleted',
  'ConversationMuted',
  'NotificationsRead',
]);

export class NotifierBatchError extends Error {
  override readonly name = 'NotifierBatchError';
}
