import type { NatsSubjects, UserChannelMessage } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import { createNotificationConsumer, outboxStats } from '@chat/notifications';
import type { Logger } from '@chat/platform';
import type { Pool } from 'pg';
import { Registry } from 'prom-client';
import type { NotifierConfig } from './config.js';
import { WebhookDelivery, webhookOptions } from './delivery.js';
import { createNotifierMetrics } from './metrics.js';

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
  const options = webhookOptions(config);
  const webhook = options && new WebhookDelivery({ pool, logger, metrics, options });
  const consumer = createNotificationConsumer({
    pool,
    store: deps.store,
    logger,
    registry,
    subjects: deps.subjects,
    publish: deps.publish,
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
