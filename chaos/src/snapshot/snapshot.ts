import { listQuarantine, migrateConsumers, type QuarantinedEvent } from '@chat/consumer';
import { READ_MODEL_CHECKPOINT, READ_MODEL_SCHEMA } from '@chat/db';
import { natsSubjects } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import { migrateNotifier, readCheckpoint } from '@chat/notifications';
import { createNotifierService, notifierEnv } from '@chat/notifier';
import type { Logger } from '@chat/platform';
import { rebuildReadModels } from '@chat/projection';
import pg from 'pg';
import type { HistoryWriter } from '../history/file.js';
import { type TableRow, tableEntries } from '../history/rows.js';
import type { LogEntry } from '../history/types.js';
import { readCheckpoints } from '../system/consumers.js';

// After the run, with every service stopped: the log as the store returns it, its rows counted in
// SQL, every consumer's checkpoint, and the read models twice — as the run left them and from a fresh
// replay of the log by the services' own code (the projector's online rebuild into a shadow schema;
// the notifier's consumer into a database of its own) — for the checker to compare row by row.

const PAGE = 5_000;

const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Writes the whole log (without bodies) to the history; returns the number of events. */
export const snapshotLog = async (store: EventStore, history: HistoryWriter): Promise<number> => {
  let from: string | undefined;
  let count = 0;
  for (;;) {
    const page = await store.readAll({ ...(from ? { fromPosition: from } : {}), maxCount: PAGE });
    for (const e of page) {
      const d = e.data;
      const members = Array.isArray(d.members) ? (d.members as string[]) : undefined;
      const user = text(d.userId);
      const entry: LogEntry = {
        k: 'log',
        pos: e.position,
        id: e.id,
        stream: e.streamId,
        rev: e.revision,
        type: e.type,
        at: e.occurredAt,
        ...(text(d.conversationId) ? { conv: text(d.conversationId) } : {}),
        ...(text(d.messageId) ? { mid: text(d.messageId) } : {}),
        ...(user ? { user } : {}),
        ...(typeof d.upToSeq === 'number' ? { upTo: d.upToSeq } : {}),
        ...(members ? { members } : {}),
      };
      history.write(entry);
    }
    count += page.length;
    const last = page.at(-1);
    if (!last || page.length < PAGE) return count;
    from = last.position;
  }
};

/** Columns written with the wall clock of the write, not derived from the log. */
const WRITE_TIME_COLUMNS = new Set(['updated_at']);

const normalize = (row: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(row)
      .filter(([k]) => !WRITE_TIME_COLUMNS.has(k))
      .map(([k, v]) => [k, v instanceof Date ? v.toISOString() : v]),
  );

/**
 * Every table of `schema` (whatever tables a later migration adds), each row keyed by a unique key;
 * the migrator's own bookkeeping (when each migration ran) is no read model.
 */
const schemaRows = async (
  pool: pg.Pool,
  schema: string,
): Promise<{ table: string; key: string; row: Record<string, unknown> }[]> => {
  // The key: the primary key, except that a unique key naming a message (conversation_id,
  // message_id) is preferred, so message rows can be matched with the log's MessageSent events.
  const { rows: tables } = await pool.query<{ table: string; pk: string[] }>(
    `SELECT DISTINCT ON (c.relname) c.relname AS table,
            array(SELECT a.attname FROM unnest(i.indkey) WITH ORDINALITY k(attnum, n)
                    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS pk
       FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
       JOIN pg_index i ON i.indrelid = c.oid AND i.indisunique AND i.indpred IS NULL
      WHERE s.nspname = $1 AND c.relkind = 'r' AND NOT starts_with(c.relname, 'kysely_')
      ORDER BY c.relname,
               EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = ANY (i.indkey)
                          AND a.attname = 'message_id') DESC,
               i.indisprimary DESC`,
    [schema],
  );
  const out: { table: string; key: string; row: Record<string, unknown> }[] = [];
  for (const { table, pk } of tables) {
    const { rows } = await pool.query<Record<string, unknown>>(
      `SELECT * FROM ${pg.escapeIdentifier(schema)}.${pg.escapeIdentifier(table)} ORDER BY ${pk.map((c) => pg.escapeIdentifier(c)).join(', ')}`,
    );
    for (const r of rows) out.push({ table, key: pk.map((c) => String(r[c])).join('|'), row: normalize(r) });
  }
  return out;
};

/**
 * The notifier's tables. Read results (pruned by age) and the webhook outbox (off in the run) are left
 * out. A record carries its message (v1.1); a message that notifies nobody has none, so the notifier
 * has no row per message to check against the log.
 */
const notifierRows = async (
  pool: pg.Pool,
): Promise<{ table: string; key: string; row: Record<string, unknown> }[]> => {
  const tables: [string, string, (r: Record<string, unknown>) => string][] = [
    [
      'notifications',
      `SELECT notification_id, recipient_id, kind, conversation_id, message_id, actor_id, preview, created_at,
              read_at
         FROM notifier.notifications ORDER BY notification_id`,
      (r) => String(r.notification_id),
    ],
    [
      'conversations',
      'SELECT * FROM notifier.conversations ORDER BY conversation_id',
      (r) => String(r.conversation_id),
    ],
    ['members', 'SELECT * FROM notifier.members ORDER BY 1, 2', (r) => `${r.conversation_id}|${r.user_id}`],
    ['mutes', 'SELECT * FROM notifier.mutes ORDER BY 1, 2', (r) => `${r.conversation_id}|${r.user_id}`],
    ['levels', 'SELECT * FROM notifier.levels ORDER BY 1, 2', (r) => `${r.conversation_id}|${r.user_id}`],
    ['blocks', 'SELECT * FROM notifier.blocks ORDER BY 1, 2', (r) => `${r.user_id}|${r.blocked_user_id}`],
  ];
  const out: { table: string; key: string; row: Record<string, unknown> }[] = [];
  for (const [table, sql, key] of tables) {
    const { rows } = await pool.query<Record<string, unknown>>(sql);
    for (const r of rows) out.push({ table, key: key(r), row: normalize(r) });
  }
  return out;
};

const recordQuarantine = (history: HistoryWriter, side: 'live' | 'replay', events: QuarantinedEvent[]) => {
  for (const q of events) {
    history.write({
      k: 'quarantine',
      side,
      consumer: q.consumer,
      pos: q.position,
      id: q.eventId,
      stream: q.streamId,
      type: q.type,
      error: q.error,
    });
  }
};

export type SnapshotDeps = {
  store: EventStore;
  /** The chat database, straight (not through the fault proxy). */
  pool: pg.Pool;
  /** An empty database on the same cluster for the notifier's replay. */
  replayDatabaseUrl: string;
  history: HistoryWriter;
  logger: Logger;
  log: (msg: string) => void;
  timeoutMs: number;
};

/** Records the log, the checkpoints and both read models twice (live, replayed). */
export const takeSnapshot = async (deps: SnapshotDeps): Promise<void> => {
  const { store, pool, history, log } = deps;
  const events = await snapshotLog(store, history);
  const counted = await pool.query<{ rows: number; ids: number }>(
    'SELECT count(*)::int AS rows, count(DISTINCT event_id)::int AS ids FROM es.events',
  );
  history.write({ k: 'logcount', rows: counted.rows[0]?.rows ?? 0, distinctIds: counted.rows[0]?.ids ?? 0 });
  const head = await store.headPosition();
  history.write({ k: 'final', head, checkpoints: await readCheckpoints(pool) });
  log(`snapshot: ${events} events in the log`);

  // An event a consumer set aside because it could not apply it is an event that consumer skipped.
  recordQuarantine(history, 'live', await listQuarantine(pool));
  const rows: TableRow[] = [];
  for (const r of await schemaRows(pool, READ_MODEL_SCHEMA))
    rows.push({ model: 'read_models', side: 'live', ...r });
  const rebuilt = await rebuildReadModels({ store, pool, logger: deps.logger });
  recordQuarantine(history, 'replay', await listQuarantine(pool, READ_MODEL_CHECKPOINT));
  log(
    `snapshot: the projector's rebuild replayed ${rebuilt.events} events in ${(rebuilt.ms / 1000).toFixed(1)} s`,
  );
  for (const r of await schemaRows(pool, READ_MODEL_SCHEMA))
    rows.push({ model: 'read_models', side: 'replay', ...r });

  for (const r of await notifierRows(pool)) rows.push({ model: 'notifier', side: 'live', ...r });
  const replayPool = new pg.Pool({ connectionString: deps.replayDatabaseUrl, max: 4 });
  replayPool.on('error', () => {});
  try {
    await migrateConsumers(replayPool);
    await migrateNotifier(replayPool);
    const config = notifierEnv.parse({ DATABASE_URL: deps.replayDatabaseUrl, LOG_LEVEL: 'warn' });
    const notifier = createNotifierService({
      config,
      pool: replayPool,
      store,
      logger: deps.logger,
      subjects: natsSubjects(),
      publish: () => {},
    });
    const started = Date.now();
    notifier.start();
    try {
      while ((await readCheckpoint(replayPool)) !== head) {
        if (Date.now() - started > deps.timeoutMs)
          throw new Error('the notifier replay did not reach the head in time');
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      await notifier.stop();
    }
    log(`snapshot: the notifier replayed the log in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const r of await notifierRows(replayPool)) rows.push({ model: 'notifier', side: 'replay', ...r });
    recordQuarantine(history, 'replay', await listQuarantine(replayPool));
  } finally {
    await replayPool.end();
  }
  for (const e of tableEntries(rows)) history.write(e);
};
