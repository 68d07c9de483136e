import { type NatsSubjects, STREAM_PREFIX } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import type { NatsConnection } from 'nats';
import type pg from 'pg';
import { Counter, Gauge, type Registry } from 'prom-client';
import { writeBehind } from '../write-behind.js';
import { ensureRelaySchema, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { routeEvent } from './routing.js';

export type RelayDeps = {
  store: EventStore;
  nats: NatsConnection;
  subjects: NatsSubjects;
  pool: pg.Pool;
  logger: Logger;
  registry: Registry;
  /** Checkpoint row name; one relay per log. */
  name?: string;
};

export type Relay = { run(signal: AbortSignal): Promise<void> };

const RELAYED_PREFIXES = [STREAM_PREFIX.conversation, STREAM_PREFIX.receipts, STREAM_PREFIX.typing];

/**
 * Tails the global log from its checkpoint and publishes every event to NATS in log order
 * (DESIGN.md "Data flow" 2). Publishing from the log, not from the command handler, means no dual
 * write: whatever is stored is delivered. At-least-once: the checkpoint moves only after a NATS flush
 * confirmed the server has the messages, so a crash re-publishes at most the events since the last
 * checkpoint, and gateways drop those duplicates by `seq`. The caller holds the leader lock.
 */
export const createRelay = (deps: RelayDeps): Relay => {
  const { store, nats, subjects, pool, registry } = deps;
  const name = deps.name ?? 'relay';
  const logger = deps.logger.child({ component: 'relay' });
  const published = metric(
    registry,
    'relay_events_published_total',
    () =>
      new Counter({ name: 'relay_events_published_total', help: 'Events relayed to NATS', registers: [] }),
  );
  const lag = metric(
    registry,
    'relay_lag_ms',
    () =>
      new Gauge({
        name: 'relay_lag_ms',
        help: 'Age of the last relayed event when it was published',
        registers: [],
      }),
  );

  return {
    async run(signal) {
      await ensureRelaySchema(pool);
      const checkpoint = await loadCheckpoint(pool, name);
      logger.info({ from: checkpoint ?? 'start' }, 'relay starting');
      // One checkpoint write per batch: batches grow under load (the store hands out what piled up
      // while we published), so the write cost per event falls as the rate rises. The write (a commit
      // waiting for its WAL flush) overlaps reading and publishing the next batch; at most one is in
      // flight, and a crash before it lands only re-publishes that batch, which gateways drop by seq.
      const checkpoints = writeBehind();
      try {
        for await (const batch of store.subscribeToAll({
          ...(checkpoint ? { fromPosition: checkpoint } : {}),
          filter: { streamPrefixes: RELAYED_PREFIXES },
          batchSize: 500,
          signal,
        })) {
          if (batch.length === 0) continue;
          for (const event of batch) {
            for (const p of routeEvent(event, subjects)) nats.publish(p.subject, p.payload);
          }
          await nats.flush();
          const last = batch[batch.length - 1]!;
          published.inc(batch.length);
          lag.set(Math.max(0, Date.now() - Date.parse(last.occurredAt)));
          await checkpoints.start(() => saveCheckpoint(pool, name, last.position));
        }
      } finally {
        await checkpoints.drain();
      }
    },
  };
};

const metric = <T>(registry: Registry, name: string, make: () => T): T => {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as T;
  const m = make();
  registry.registerMetric(m as Parameters<Registry['registerMetric']>[0]);
  return m;
};
