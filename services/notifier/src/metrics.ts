import { Counter, Gauge, type Registry } from 'prom-client';

export type NotifierMetrics = ReturnType<typeof createNotifierMetrics>;

/**
 * The webhook worker's Prometheus metrics (the log consumer's come from @chat/notifications and the
 * consumer runtime). `outboxDepth` is read from the database at scrape time, so every instance reports
 * the shared outbox, not just what it claimed itself.
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
  const registers = [registry];
  const metrics = {
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
  };
  return metrics;
};
