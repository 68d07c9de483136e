import {
  createReadModelDb,
  migrateReadModels,
  READ_MODEL_CHECKPOINT,
  READ_MODEL_SCHEMA,
  readCheckpoint,
} from '@chat/db';
import { type EventStore, START_POSITION } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import { sql } from 'kysely';
import type pg from 'pg';
import { applyLockKey, PROJECTED_STREAMS } from '../projection/projector.js';
import { createReplayer, projectBatch } from '../projection/writer.js';

export const SHADOW_SCHEMA_PREFIX = `${READ_MODEL_SCHEMA}_rebuild_`;
const REBUILD_LOCK = 'read_models:rebuild';

export class RebuildInProgressError extends Error {
  override readonly name = 'RebuildInProgressError';
}

export type RebuildProgress = { phase: 'replay' | 'swap' | 'done'; events: number; position: string };

export type RebuildResult = { events: number; ms: number; position: string };

/**
 * Online rebuild (DESIGN.md "Replay"): replays the log from 0 into a fresh shadow schema while the live
 * projection keeps serving, then — holding the live projection's apply lock so no live batch is in
 * flight — applies the last few events and renames the schemas in one transaction. Queries name the
 * schema, so they read the old tables until the commit and the new ones after; none fails. The live
 * projector's next batch reads the new checkpoint and skips what the rebuild already applied.
 */
export const rebuildReadModels = async (deps: {
  store: EventStore;
  pool: pg.Pool;
  logger: Logger;
  batchSize?: number;
  onProgress?: (progress: RebuildProgress) => void;
}): Promise<RebuildResult> => {
  const { store, pool } = deps;
  const logger = deps.logger.child({ component: 'rebuild' });
  const batchSize = deps.batchSize ?? 5000;
  const started = Date.now();
  const lock = await pool.connect();
  try {
    const { rows } = await lock.query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok',
      [REBUILD_LOCK],
    );
    if (!rows[0]?.ok) throw new RebuildInProgressError('another rebuild of the read models is running');
    // Leftovers of a rebuild that crashed are ours to clear: we hold the rebuild lock.
    const stale = await lock.query<{ nspname: string }>(
      `SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)`,
      [SHADOW_SCHEMA_PREFIX],
    );
    for (const s of stale.rows) await lock.query(`DROP SCHEMA ${quoteIdent(s.nspname)} CASCADE`);

    const shadow = `${SHADOW_SCHEMA_PREFIX}${Date.now().toString(36)}`;
    await migrateReadModels(pool, shadow);
    const shadowDb = createReadModelDb(pool, shadow);
    let position = START_POSITION;
    let events = 0;
    const report = (phase: RebuildProgress['phase']) => deps.onProgress?.({ phase, events, position });
    logger.info({ shadow }, 'rebuild replaying into shadow schema');

    // Three stages overlap: reading page N+2, folding page N+1 (Node), writing page N (Postgres).
    const read = (from: string) =>
      store.readAll({ fromPosition: from, maxCount: batchSize, filter: PROJECTED_STREAMS });
    const replayer = createReplayer(shadowDb, shadow, READ_MODEL_CHECKPOINT, (event, err) =>
      logger.error({ err, eventId: event.id, position: event.position }, 'skipping malformed event'),
    );
    let next = read(position);
    for (;;) {
      const page = await next;
      const last = page.at(-1);
      if (!last) break;
      const full = page.length === batchSize;
      if (full) next = read(last.position);
      await replayer.apply(page);
      events += page.length;
      position = last.position;
      report('replay');
      if (!full) break;
    }
    await replayer.drain();

    report('swap');
    const old = `${READ_MODEL_SCHEMA}_old_${Date.now().toString(36)}`;
    const liveDb = createReadModelDb(pool, READ_MODEL_SCHEMA);
    let swapped = false;
    await shadowDb.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(hashtextextended(${applyLockKey(READ_MODEL_SCHEMA)}, 0))`.execute(
        trx,
      );
      const live = await sql<{ exists: boolean }>`
        SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ${READ_MODEL_SCHEMA}) AS exists`.execute(
        trx,
      );
      const liveExists = live.rows[0]?.exists === true;
      // The new tables must cover everything the live ones have applied, or the live projector (whose
      // subscription is already past it) would never apply it to the new tables.
      const liveCheckpoint = liveExists ? await readCheckpoint(liveDb) : START_POSITION;
      for (let round = 0; ; round++) {
        const page = await store.readAll({
          fromPosition: position,
          maxCount: batchSize,
          filter: PROJECTED_STREAMS,
        });
        const last = page.at(-1);
        if (!last) break;
        await projectBatch(trx, shadow, READ_MODEL_CHECKPOINT, page);
        events += page.length;
        position = last.position;
        if (round >= 20 && position >= liveCheckpoint) break;
      }
      if (liveExists) {
        await sql`ALTER SCHEMA ${sql.id(READ_MODEL_SCHEMA)} RENAME TO ${sql.id(old)}`.execute(trx);
      }
      await sql`ALTER SCHEMA ${sql.id(shadow)} RENAME TO ${sql.id(READ_MODEL_SCHEMA)}`.execute(trx);
      swapped = liveExists;
    });
    if (swapped) await lock.query(`DROP SCHEMA ${quoteIdent(old)} CASCADE`);
    report('done');
    const ms = Date.now() - started;
    logger.info({ events, ms, position }, 'rebuild swapped in');
    return { events, ms, position };
  } finally {
    await lock.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [REBUILD_LOCK]).catch(() => {});
    lock.release();
  }
};

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
