import { readCheckpoint } from '@chat/consumer';
import { decodePosition, type EventStore } from '@chat/eventstore';
import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { REBUILD_CHECKPOINT } from './rebuild.js';

/** Fraction of the log between `position` and `head` already covered (positions are 128-bit numbers). */
export const positionFraction = (position: string, head: string): number => {
  const toBig = (p: string) => {
    const [hi, lo] = decodePosition(p);
    return (hi << 64n) | lo;
  };
  const h = toBig(head);
  if (h === 0n) return 1;
  const p = toBig(position);
  return p >= h ? 1 : Number((p * 10_000n) / h) / 10_000;
};

/**
 * A rebuild may run in another process (`chatctl rebuild read-models`): its progress is visible here
 * from its checkpoint row, read when /metrics is scraped.
 */
export const registerRebuildProgress = (registry: Registry, pool: pg.Pool, store: EventStore): void => {
  new Gauge({
    name: 'projector_rebuild_progress_ratio',
    help: 'Progress of a running read-model rebuild (0..1); 0 when none runs',
    registers: [registry],
    async collect() {
      const position = await readCheckpoint(pool, REBUILD_CHECKPOINT).catch(() => undefined);
      this.set(position ? positionFraction(position, await store.headPosition()) : 0);
    },
  });
};
