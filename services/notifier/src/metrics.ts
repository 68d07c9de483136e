import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const RATE_WINDOW_MS = 10_000;

export type NotifierMetrics = ReturnType<typeof createNotifierMetrics>;

/**
 * The notifier's Prometheus metrics. `outboxDepth` is read from the database at scrape time, so every
 * instance reports the shared outbox, not just what it claimed itself.
 */
export const createNotifierMetrics = (
  registry: Registry,
  outbox: () => Promise<{
    pending: number;
    retrying: number;
    deadLettered: number;
    oldestPendingSeconds: number;
  }>,
) => {
  const recent: { at: number; n: number }[] = [];
  const recordsPerSecond = () => {
    const since = Date.now() - RATE_WINDOW_MS;
    while (recent.length > 0 && recent[0]!.at < since) recent.shift();
    return recent.reduce((sum, r) => sum + r.n, 0) / (RATE_WINDOW_MS / 1000);
  };
  const registers = [registry];
  const metrics = {
    events: new Counter({
      name: 'notifier_events_total',
      help: 'Log events processed by the notifier',
      registers,
    }),
    records: new Counter({
      name: 'notifier_records_total',
      help: 'Notification records created',
      labelNames: ['kind'] as const,
      registers,
    }),
    recordRate: new Gauge({
      name: 'notifier_records_per_second',
      help: `Notification records created per second over the last ${RATE_WINDOW_MS / 1000} s`,
      registers,
      collect() {
        this.set(recordsPerSecond());
      },
    }),
    batchSeconds: new Histogram({
      name: 'notifier_batch_duration_seconds',
      help: 'Time to apply one batch of log events (one transaction)',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    lagSeconds: new Gauge({
      name: 'notifier_lag_seconds',
      help: 'Age of the newest event of the last applied batch when it was committed',
      registers,
    }),
    leader: new Gauge({ name: 'notifier_leader', help: '1 while this instance consumes the log', registers }),
    pushFailures: new Counter({
      name: 'notifier_push_failures_total',
      help: 'Live pushes that could not be published to NATS',
      registers,
    }),
    webhookAttempts: new Counter({
      name: 'notifier_webhook_attempts_total',
      help: 'Webhook delivery attempts',
      registers,
    }),
    webhookFailures: new Counter({
      name: 'notifier_webhook_failures_total',
      help: 'Webhook delivery attempts that failed',
      registers,
    }),
    webhookDelivered: new Counter({
      name: 'notifier_webhook_delivered_total',
      help: 'Webhook deliveries acknowledged by the receiver',
      registers,
    }),
    webhookDeadLetters: new Counter({
      name: 'notifier_webhook_dead_letters_total',
      help: 'Webhook deliveries dead-lettered by this instance',
      registers,
    }),
    outboxDepth: new Gauge({
      name: 'notifier_outbox_depth',
      help: 'Webhook deliveries in the outbox by state',
      labelNames: ['state'] as const,
      registers,
      async collect() {
        try {
          const s = await outbox();
          this.set({ state: 'pending' }, s.pending);
          this.set({ state: 'retrying' }, s.retrying);
          this.set({ state: 'dead' }, s.deadLettered);
        } catch {
          // The scrape still answers; readiness reports the database.
        }
      },
    }),
    recordsCreated(n: number) {
      if (n > 0) recent.push({ at: Date.now(), n });
    },
  };
  return metrics;
};
