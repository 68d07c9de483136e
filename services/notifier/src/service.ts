import type { NatsSubjects, UserChannelMessage } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import { createNotificationConsumer, outboxStats } from '@chat/notifications';
import type { Logger } from '@chat/platform';
import type { Pool } from 'pg';
import { Registry } from 'prom-client';
import type { NotifierConfig } from './config.js';
import { WebhookDelivery } from './delivery.js';
import { createNotifierMetrics } from './metrics.js';
import { signingKey } from './signature.js';

/**
 * The notifier's long-running parts: the log consumer (one leader, others stand by) and the webhook
 * worker (on every instance; the outbox claim makes that safe).
 */
export const createNotifierService = (deps: {
  config: Readonly<NotifierConfig>;
  pool: Pool;
  store: EventStore;
  logger: Logger;
  subjects: NatsSubjects;
  publish: (subject: string, message: UserChannelMessage) => void;
}) => {
  const { config, pool, logger } = deps;
  const registry = new Registry();
  const metrics = createNotifierMetrics(registry, () => outboxStats(pool));
  const webhook =
    config.WEBHOOK_URL && config.WEBHOOK_SECRET.length > 0
      ? new WebhookDelivery({
          pool,
          logger,
          metrics,
          options: {
            url: config.WEBHOOK_URL,
            keys: config.WEBHOOK_SECRET.map(signingKey),
            maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
            backoffBaseMs: config.WEBHOOK_BACKOFF_MS,
            backoffMaxMs: config.WEBHOOK_BACKOFF_MAX_MS,
            timeoutMs: config.WEBHOOK_TIMEOUT_MS,
            leaseMs: config.WEBHOOK_LEASE_MS,
            concurrency: config.WEBHOOK_CONCURRENCY,
            pollMs: config.WEBHOOK_POLL_MS,
            retainDeliveredSeconds: config.WEBHOOK_RETAIN_DELIVERED_SECONDS,
          },
        })
      : undefined;
  const consumer = createNotificationConsumer({
    pool,
    store: deps.store,
    logger,
    registry,
    subjects: deps.subjects,
    publish: deps.publish,
    notifyAllMaxMembers: config.NOTIFY_ALL_MAX_MEMBERS,
    webhook: webhook !== undefined,
    onEnqueued: () => webhook?.wake(),
    batchSize: config.NOTIFIER_BATCH_SIZE,
    lingerMs: config.NOTIFIER_LINGER_MS,
    leaderRetryMs: config.LEADER_RETRY_MS,
  });

  const stopping = new AbortController();
  let running: Promise<unknown> | undefined;
  return {
    registry,
    metrics,
    start(): void {
      running = Promise.all([consumer.run(stopping.signal), webhook?.run(stopping.signal)]);
    },
    async stop(): Promise<void> {
      stopping.abort();
      await running;
    },
  };
};
