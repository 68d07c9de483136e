import {
  deleteCheckpoint,
  describeError,
  readCheckpoint,
  replaceQuarantine,
  saveCheckpoint,
  transaction,
} from '@chat/consumer';
import {
  createIndexes,
  createReadModelDb,
  type DeferredIndex,
  dropIndexes,
  migrateReadModels,
  READ_MODEL_CHECKPOINT,
  READ_MODEL_SCHEMA,
  setSchemaLogged,
} from '@chat/db';
import { type EventStore, type RecordedEvent, START_POSITION } from '@chat/eventstore';
import { connectClient, type Logger } from '@chat/platform';
import type pg from 'pg';
import { applyLockKey, PROJECTED_STREAMS } from './projector.js';
import { createReplayer, type OnRejected, projectEvents } from './writer.js';

export const SHADOW_SCHEMA_PREFIX = `${READ_MODEL_SCHEMA}_rebuild_`;
/** The checkpoint row of a running rebuild (its progress, shown by `chatctl stats` and /metrics). */
export const REBUILD_CHECKPOINT = `${READ_MODEL_CHECKPOINT}:rebuild`;
const REBUILD_LOCK = 'read_models:rebuild';

export class RebuildInProgressError extends Error {
  override readonly name = 'RebuildInProgressError';
}

export type RebuildProgress = { phase: 'replay' | 'swap' | 'done'; events: number; position: string };

export type RebuildResult = {
  events: number;
  ms: number;
  position: string;
  /** Events the projection could not apply: they make up the read models' quarantine from now on. */
  quarantined: number;
};

/**
 * Online rebuild (DESIGN.md "Replay"): replays the log from 0 into a fresh shadow schema while the live
 * projection keeps serving, then — holding the live projection's apply lock so no live batch is in
 * flight — applies the last few events, moves the projection's checkpoint and renames the schemas in
 * one transaction. Queries name the schema, so they read the old tables until the commit and the new
 * ones after; none fails. The live projector's next batch reads the new checkpoint and skips what the
 * rebuild already applied.
 *
 * Replaying in log order with today's code is also how quarantined events are retried in their place:
 * the projection's quarantine becomes exactly the events this replay could not apply.
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
  const rejected: { event: RecordedEvent; error: string }[] = [];
  const onRejected: OnRejected = (event, error) => {
    rejected.push({ event, error: describeError(error) });
    logger.warn(
      { err: error, eventId: event.id, position: event.position },
      'event cannot be applied; set aside',
    );
  };
  const lock = await connectClient(pool);
  // Losing this connection loses only the guard against a second rebuild: log it, do not crash.
  let lockLost = false;
  lock.on('error', (err) => {
    lockLost = true;
    logger.warn({ err }, 'rebuild lock connection lost');
  });
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
    await setSchemaLogged(pool, shadow, false);
    const indexes = await deferMessageIndexes(pool, shadow);
    await deleteCheckpoint(pool, REBUILD_CHECKPOINT);
    let position = START_POSITION;
    let events = 0;
    const report = (phase: RebuildProgress['phase']) => deps.onProgress?.({ phase, events, position });
    logger.info({ shadow }, 'rebuild replaying into shadow schema');

    // Three stages overlap: reading page N+2, folding page N+1 (Node), writing page N (Postgres).
    const read = (from: string) =>
      store.readAll({ fromPosition: from, maxCount: batchSize, filter: PROJECTED_STREAMS });
    const replayer = createReplayer({
      pool,
      schema: shadow,
      progress: REBUILD_CHECKPOINT,
      onRejected,
      beforeMessageLookup: indexes.forLookups,
    });
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
    // Logged before the indexes are made: making a table logged copies it and builds its indexes anew.
    await setSchemaLogged(pool, shadow, true);
    if (lockLost || !(await answers(lock))) {
      lockLost = true;
      throw new RebuildInterruptedError(
        'the rebuild lost its lock session during the replay (a Postgres restart empties the unlogged shadow tables); nothing was swapped in, run the rebuild again',
      );
    }
    await indexes.all();

    report('swap');
    const old = `${READ_MODEL_SCHEMA}_old_${Date.now().toString(36)}`;
    const swapped = await swap(
      deps,
      { shadow, old, from: position, batchSize, onRejected, rejected },
      (page) => {
        events += page.length;
        position = page.at(-1)?.position ?? position;
      },
    );
    if (swapped) await lock.query(`DROP SCHEMA ${quoteIdent(old)} CASCADE`);
    report('done');
    const ms = Date.now() - started;
    logger.info({ events, ms, position, quarantined: rejected.length }, 'rebuild swapped in');
    return { events, ms, position, quarantined: rejected.length };
  } finally {
    await lock.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [REBUILD_LOCK]).catch(() => {});
    lock.release(lockLost);
  }
};

export class RebuildInterruptedError extends Error {
  override readonly name = 'RebuildInterruptedError';
}

/**
 * Whether the rebuild's lock session still answers. Postgres empties unlogged tables when it recovers
 * from a crash, and the replay's pool would carry on writing into the emptied shadow through new
 * connections; every restart ends the lock session, so the replay is trusted only if that session
 * still answers once the tables are logged (from then on they survive a crash like any other).
 */
const answers = (lock: pg.PoolClient): Promise<boolean> =>
  lock.query('SELECT 1').then(
    () => true,
    () => false,
  );

/**
 * The shadow `messages` table's indexes, dropped for the replay (its rows are appended, each maintained
 * index cost more per row than building it once at the end: README "Known limits") and created again
 * when first needed: the btree ones before the first page that reads messages back (an edit, a delete,
 * a thread reply, a watermark recount: from there on they are maintained row by row as in the live
 * projection), all of them — the search GIN too — before the swap. Until then nothing reads the shadow,
 * and a statement's result does not depend on which indexes exist; only the unique constraints are
 * checked at creation instead of row by row, and a violation fails the rebuild either way.
 */
const deferMessageIndexes = async (pool: pg.Pool, schema: string) => {
  const deferred = await dropIndexes(pool, schema, 'messages');
  let created: DeferredIndex[] = [];
  const create = async (which: (index: DeferredIndex) => boolean) => {
    const now = deferred.filter((i) => which(i) && !created.includes(i));
    await createIndexes(pool, now);
    created = [...created, ...now];
  };
  return {
    forLookups: () => create((i) => i.method === 'btree'),
    all: () => create(() => true),
  };
};

/**
 * The swap, in one transaction holding the live projection's apply lock exclusively: apply what the
 * log gained since the replay, move the projection's checkpoint there, make its quarantine the replay's,
 * rename the schemas. True when an old live schema was renamed away (and must be dropped).
 */
const swap = async (
  deps: { store: EventStore; pool: pg.Pool },
  o: {
    shadow: string;
    old: string;
    /** Where the replay ended. */
    from: string;
    batchSize: number;
    onRejected: OnRejected;
    rejected: readonly { event: RecordedEvent; error: string }[];
  },
  onPage: (page: readonly RecordedEvent[]) => void,
): Promise<boolean> => {
  return transaction(deps.pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [
      applyLockKey(READ_MODEL_SCHEMA),
    ]);
    const { rows } = await client.query<{ exists: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS exists',
      [READ_MODEL_SCHEMA],
    );
    const liveExists = rows[0]?.exists === true;
    // The new tables must cover everything the live ones have applied, or the live projector (whose
    // subscription is already past it) would never apply it to the new tables.
    const liveCheckpoint = (await readCheckpoint(client, READ_MODEL_CHECKPOINT)) ?? START_POSITION;
    let position = o.from;
    const shadowDb = createReadModelDb(client, o.shadow);
    for (let round = 0; ; round++) {
      const page = await deps.store.readAll({
        fromPosition: position,
        maxCount: o.batchSize,
        filter: PROJECTED_STREAMS,
      });
      const last = page.at(-1);
      if (!last) break;
      await projectEvents(shadowDb, o.shadow, page, o.onRejected);
      onPage(page);
      position = last.position;
      if (round >= 20 && position >= liveCheckpoint) break;
    }
    await saveCheckpoint(client, READ_MODEL_CHECKPOINT, position);
    await deleteCheckpoint(client, REBUILD_CHECKPOINT);
    await replaceQuarantine(client, READ_MODEL_CHECKPOINT, o.rejected);
    if (liveExists)
      await client.query(`ALTER SCHEMA ${quoteIdent(READ_MODEL_SCHEMA)} RENAME TO ${quoteIdent(o.old)}`);
    await client.query(`ALTER SCHEMA ${quoteIdent(o.shadow)} RENAME TO ${quoteIdent(READ_MODEL_SCHEMA)}`);
    return liveExists;
  });
};

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
