import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type ProjectionMetrics = ReturnType<typeof createProjectionMetrics>;

export const createProjectionMetrics = (registry: Registry) => ({
  events: new Counter({
    name: 'projector_events_applied_total',
    help: 'Events applied to the read models',
    registers: [registry],
  }),
  batches: new Histogram({
    name: 'projector_batch_size',
    help: 'Events per read-model transaction',
    buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 2000, 5000],
    registers: [registry],
  }),
  lagSeconds: new Histogram({
    name: 'projector_lag_seconds',
    help: 'Time from an event being stored to its read-model commit',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
    registers: [registry],
  }),
  lagMs: new Gauge({
    name: 'projector_lag_ms',
    help: 'Age of the last applied event when its batch committed',
    registers: [registry],
  }),
  malformed: new Counter({
    name: 'projector_malformed_events_total',
    help: 'Events skipped because their data does not match the schema',
    registers: [registry],
  }),
  /** The low 64 bits of the checkpoint position (the log sequence in the Postgres store). */
  position: new Gauge({
    name: 'projector_position',
    help: 'Checkpoint position of the projection (low 64 bits)',
    registers: [registry],
  }),
});
