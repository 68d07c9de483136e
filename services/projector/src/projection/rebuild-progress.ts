import { READ_MODEL_CHECKPOINT } from '@chat/db';
import { decodePosition, type EventStore } from '@chat/eventstore';
import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import { SHADOW_SCHEMA_PREFIX } from '../rebuild/rebuild.js';

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
 * from its shadow schema's checkpoint, read when /metrics is scraped.
 */
export const registerRebuildProgress = (registry: Registry, pool: pg.Pool, store: EventStore): void => {
  new Gauge({
    name: 'projector_rebuild_progress_ratio',
    help: 'Progress of a running read-model rebuild (0..1); 0 when none runs',
    registers: [registry],
    async collect() {
      const { rows } = await pool.query<{ nspname: string }>(
        'SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname DESC LIMIT 1',
        [SHADOW_SCHEMA_PREFIX],
      );
      const shadow = rows[0]?.nspname;
      if (!shadow) return this.set(0);
      const cp = await pool
        .query<{ position: string }>(
          `SELECT position FROM "${shadow.replace(/"/g, '""')}".checkpoints WHERE name = $1`,
          [READ_MODEL_CHECKPOINT],
        )
        .catch(() => ({ rows: [] }));
      const position = cp.rows[0]?.position;
      this.set(position ? positionFraction(position, await store.headPosition()) : 0);
    },
  });
};

/** Events the projection still has to apply (capped: a count past the cap reads as the cap). */
export const LAG_COUNT_CAP = 10_000;
