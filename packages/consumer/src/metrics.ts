import { decodePosition, type RecordedEvent } from '@chat/eventstore';
import { Counter, Gauge, Histogram, type Metric, type Registry } from 'prom-client';

export type ConsumerMetrics = ReturnType<typeof createConsumerMetrics>;

/**
 * The runtime's metrics, named `<prefix>_…` so each service keeps the names its dashboards and the
 * benchmarks read (`projector_lag_seconds`, `relay_lag_ms`, `notifier_leader`, …). Gauges that need
 * the database (quarantine size, events behind) are read when /metrics is scraped.
 */
export const createConsumerMetrics = (
  registry: Registry | undefined,
  prefix: string,
  scrape: { quarantineSize: () => Promise<number>; eventsBehind?: () => Promise<number> },
) => {
  const registers = registry ? [registry] : [];
  // A registry may outlive one consumer object (a test starting it twice): reuse what is there.
  const metric = <T extends Metric>(name: string, make: (name: string) => T): T =>
    (registry?.getSingleMetric(`${prefix}_${name}`) as T | undefined) ?? make(`${prefix}_${name}`);
  const eventsBehind = scrape.eventsBehind;
  const metrics = {
    events: metric(
      'events_applied_total',
      (name) => new Counter({ name, help: 'Events applied', registers }),
    ),
    batchesWithoutWrites: metric(
      'batches_without_writes_total',
      (name) =>
        new Counter({
          name,
          help: 'Batches that wrote nothing but the checkpoint, moved without a transaction',
          registers,
        }),
    ),
    batches: metric(
      'batch_size',
      (name) =>
        new Histogram({
          name,
          help: 'Events per committed batch',
          buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 2000, 5000],
          registers,
        }),
    ),
    batchSeconds: metric(
      'batch_duration_seconds',
      (name) =>
        new Histogram({
          name,
          help: 'Time to apply and commit one batch',
          buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
          registers,
        }),
    ),
    lagSeconds: metric(
      'lag_seconds',
      (name) =>
        new Histogram({
          name,
          help: 'Time from an event being stored to its batch being committed',
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
          registers,
        }),
    ),
    lagMs: metric(
      'lag_ms',
      (name) =>
        new Gauge({ name, help: 'Age of the last applied event when its batch committed', registers }),
    ),
    /** The low 64 bits of the checkpoint (the log sequence in the Postgres store). */
    position: metric(
      'position',
      (name) => new Gauge({ name, help: 'Checkpoint position (low 64 bits)', registers }),
    ),
    leader: metric(
      'leader',
      (name) => new Gauge({ name, help: '1 while this instance consumes the log', registers }),
    ),
    retries: metric(
      'retries_total',
      (name) =>
        new Counter({
          name,
          help: 'Failed batch attempts retried: reason="dependency" (a dependency failed) or "isolating" (searching the event a batch fails on)',
          labelNames: ['reason'] as const,
          registers,
        }),
    ),
    quarantined: metric(
      'quarantined_total',
      (name) => new Counter({ name, help: 'Events quarantined by this instance', registers }),
    ),
    quarantineSize: metric(
      'quarantine_size',
      (name) =>
        new Gauge({
          name,
          help: 'Events in quarantine now (listed by chatctl quarantine list)',
          registers,
          async collect() {
            // The scrape still answers when the database does not; readiness reports the database.
            this.set(await scrape.quarantineSize().catch(() => Number.NaN));
          },
        }),
    ),
    ...(eventsBehind
      ? {
          eventsBehind: metric(
            'lag_events',
            (name) =>
              new Gauge({
                name,
                help: 'Events stored but not yet applied (capped)',
                registers,
                async collect() {
                  this.set(await eventsBehind().catch(() => Number.NaN));
                },
              }),
          ),
        }
      : {}),
  };
  return {
    ...metrics,
    setPosition(position: string): void {
      metrics.position.set(Number(decodePosition(position)[1]));
    },
    /** A batch committed: `events` applied in `seconds`, ending at `position`. */
    committed(events: readonly RecordedEvent[], position: string, seconds: number): void {
      const now = Date.now();
      metrics.batchSeconds.observe(seconds);
      this.setPosition(position);
      if (events.length === 0) return;
      metrics.events.inc(events.length);
      metrics.batches.observe(events.length);
      for (const e of events) metrics.lagSeconds.observe(Math.max(0, now - Date.parse(e.occurredAt)) / 1000);
      const last = events[events.length - 1]!;
      metrics.lagMs.set(Math.max(0, now - Date.parse(last.occurredAt)));
    },
  };
};
