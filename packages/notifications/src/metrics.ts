import type { NotificationKind } from '@chat/events';
import { Counter, Gauge, type Registry } from 'prom-client';

const RATE_WINDOW_MS = 10_000;

export type NotificationMetrics = ReturnType<typeof createNotificationMetrics>;

/** What the notification consumer creates and pushes (the runtime's `notifier_…` metrics come with it). */
export const createNotificationMetrics = (registry: Registry | undefined) => {
  const registers = registry ? [registry] : [];
  const recent: { at: number; n: number }[] = [];
  const recordsPerSecond = () => {
    const since = Date.now() - RATE_WINDOW_MS;
    while (recent.length > 0 && recent[0]!.at < since) recent.shift();
    return recent.reduce((sum, r) => sum + r.n, 0) / (RATE_WINDOW_MS / 1000);
  };
  const records = new Counter({
    name: 'notifier_records_total',
    help: 'Notification records created',
    labelNames: ['kind'] as const,
    registers,
  });
  new Gauge({
    name: 'notifier_records_per_second',
    help: `Notification records created per second over the last ${RATE_WINDOW_MS / 1000} s`,
    registers,
    collect() {
      this.set(recordsPerSecond());
    },
  });
  return {
    pushFailures: new Counter({
      name: 'notifier_push_failures_total',
      help: 'Live pushes that could not be published to NATS',
      registers,
    }),
    created(created: readonly { kind: NotificationKind }[]): void {
      const byKind = new Map<NotificationKind, number>();
      for (const r of created) byKind.set(r.kind, (byKind.get(r.kind) ?? 0) + 1);
      for (const [kind, n] of byKind) records.inc({ kind }, n);
      if (created.length > 0) recent.push({ at: Date.now(), n: created.length });
    },
  };
};
