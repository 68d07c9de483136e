import { setTimeout as delay } from 'node:timers/promises';
import { type EventMetadata, PERSONAL_FIELDS } from '@chat/events';
import type { Logger } from '@chat/platform';
import pg from 'pg';
import {
  type AppendResult,
  type DataKeyClaim,
  decodePosition,
  type EventFilter,
  type EventStore,
  type ExpectedRevision,
  encodePosition,
  type KeyedPage,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  START_POSITION,
  type StoredDataKey,
  type StreamMetadata,
  type SubscribeOptions,
} from '../port.js';
import { upcastRecorded } from '../upcast.js';
import { validateAppend } from '../validate.js';
import { GroupCommitAppender, type GroupCommitOptions } from './appender.js';
import type { PgListener } from './listener.js';
import { LogWakeup } from './wakeup.js';

export type PostgresEventStoreOptions = ({ pool: pg.Pool } | { connectionString: string }) & {
  logger?: Logger;
  /** Subscribers re-read at least this often even without a notification. */
  pollIntervalMs?: number;
  /** Runs the max-age scavenger on this interval; 0 or unset: only when `scavengeExpired()` is called. */
  scavengeIntervalMs?: number;
  /** Pool size when the store creates its own pool. */
  maxConnections?: number;
  groupCommit?: GroupCommitOptions;
  /** The process's LISTEN connection to share (its owner closes it); unset: the store keeps its own. */
  listener?: PgListener;
};

/** The Postgres adapter plus what only it has: an explicit scavenger run. */
export interface PostgresEventStore extends EventStore {
  /** Deletes events older than their stream's `maxAgeSeconds`; returns how many. */
  scavengeExpired(): Promise<number>;
}

type EventRow = {
  /** xid8 has no parser in pg: it arrives as its decimal text. */
  transaction_id: string;
  global_position: string;
  stream_id: string;
  revision: string;
  event_id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: EventMetadata;
  created_at: Date;
};

type PageRow = Partial<EventRow> & {
  head_transaction_id: string;
  head_global_position: string;
  /** A keyed page's rows: the data key the event's personal field names, when it is stored or erased. */
  key_kid?: string | null;
  key_user_id?: string | null;
  key_wrapped?: Buffer | null;
};

const EVENT_COLUMNS =
  'e.transaction_id, e.global_position, e.stream_id, e.revision, e.event_id, e.type, e.data, e.metadata, e.created_at';

/**
 * The kid an event's personal field is sealed with (`{ enc, kid, ct }`, EncryptingEventStore) as a uuid,
 * or null (no personal field, plain text, or not a uuid — which the reader's own key query reports).
 * Every personal-field type has one field; a second field's key would be fetched by the reader.
 */
const KID_TEXT = `(CASE e.type ${Object.entries(PERSONAL_FIELDS)
  .map(([type, fields]) => `WHEN '${type}' THEN e.data->'${fields?.[0]?.field}'->>'kid'`)
  .join(' ')} END)`;
const KID_OF_EVENT = `CASE WHEN ${KID_TEXT} ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                           THEN ${KID_TEXT}::uuid END`;

/**
 * Session settings of the store's own connections: every access path of the log is an index (the
 * primary key in log order, event ids, stream revisions), so the planner is kept off bitmap and
 * sequential scans. With statistics that underestimate the log (a fresh database before autovacuum's
 * first ANALYZE, a bulk import), a page read — "the next N events after the cursor that pass the
 * filter" — was planned as a bitmap scan of everything from the cursor to the head plus a sort, for
 * every page: a subscriber N events behind paid O(N) per page. auto_explain on `pnpm bench b4` showed
 * ~1,000 such reads at 45–70 ms; with these settings 45, and the write path alone went from ~5,500 to
 * ~9,600 SendMessage/s. A pool passed in by the caller should be created with the same `options`.
 */
export const STORE_SESSION_OPTIONS = '-c enable_bitmapscan=off -c enable_seqscan=off';

const DEFAULT_BATCH_SIZE = 1_000;

/** SQLSTATE undefined_table. */
const UNDEFINED_TABLE = '42P01';

/**
 * Creates the Postgres event store over an existing pool (which the caller keeps owning) or a connection
 * string (the store owns and closes its pool). The schema must exist: run `migrateEventStore` first.
 */
export const createPostgresEventStore = (options: PostgresEventStoreOptions): PostgresEventStore => {
  const ownsPool = !('pool' in options);
  const pool =
    'pool' in options
      ? options.pool
      : new pg.Pool({
          connectionString: options.connectionString,
          max: options.maxConnections ?? 10,
          options: STORE_SESSION_OPTIONS,
        });
  const logger = options.logger;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const appender = new GroupCommitAppender(pool, options.groupCommit);
  const wakeup = new LogWakeup(pool.options, logger, options.listener);
  const closing = new AbortController();

  if (ownsPool) {
    // An idle client that loses its connection emits on the pool; without a listener that would crash.
    pool.on('error', (error) => logger?.warn({ err: error }, 'event store pool client error'));
  }

  const scavengeExpired = async (): Promise<number> => {
    const { rows } = await pool.query<{ deleted: string }>('SELECT es.scavenge_expired() AS deleted');
    return Number(rows[0]?.deleted ?? 0);
  };

  let scavengeTimer: NodeJS.Timeout | undefined;
  if (options.scavengeIntervalMs && options.scavengeIntervalMs > 0) {
    scavengeTimer = setInterval(() => {
      scavengeExpired().then(
        (deleted) => deleted > 0 && logger?.debug({ deleted }, 'scavenged expired events'),
        (error: unknown) => logger?.warn({ err: error }, 'event store scavenger failed'),
      );
    }, options.scavengeIntervalMs);
    scavengeTimer.unref();
  }

  /**
   * One page of the log after `from` in log order, and how far it scanned. Nothing can commit later
   * below an event this statement sees (the append lock: schema.ts), so the page needs no horizon. From
   * the same snapshot comes the head (the newest event): when the page is not full, everything up to it
   * has been seen, so a filtered reader moves there.
   */
  const readPage = async (
    from: string,
    filter: EventFilter | undefined,
    limit: number,
    withKeys = false,
  ): Promise<KeyedPage & { scannedTo: string }> => {
    const [fromTx, fromGp] = decodePosition(from);
    const params: unknown[] = [fromTx.toString(), fromGp.toString(), limit];
    const where = filterSql(filter, params);
    const page = `SELECT ${EVENT_COLUMNS}${withKeys ? `, ${KID_OF_EVENT} AS kid` : ''} FROM es.events e
                   WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint) ${where}
                   ORDER BY e.transaction_id, e.global_position
                   LIMIT $3`;
    // With keys, each event's data key comes from the same snapshot as the event: stored (wrapped), or
    // erased (the tombstone names it), or neither (no row; the reader's own query reports it). A kid is
    // never in both tables (an erasure moves it from one to the other in one transaction), so the
    // tombstone is probed only for a kid that is not stored: one index probe for the common case.
    const pageWithKeys = `SELECT pe.*, dk.kid::text AS key_kid, dk.user_id AS key_user_id, dk.wrapped AS key_wrapped
                            FROM (${page}) pe
                            LEFT JOIN LATERAL (
                              SELECT k.kid, k.user_id, k.wrapped FROM keys.user_data_keys k WHERE k.kid = pe.kid
                              UNION ALL SELECT x.kid, x.user_id, NULL FROM keys.erased_users x WHERE x.kid = pe.kid
                              LIMIT 1) dk ON true`;
    // A named statement per filter shape: each connection plans it once (planning costs more than
    // running it for a small live page).
    const { rows } = await pool.query<PageRow>({
      name: `es_read_page${filter?.streamPrefixes ? '_p' : ''}${filter?.eventTypes ? '_t' : ''}${withKeys ? '_k' : ''}`,
      text: `SELECT head.transaction_id AS head_transaction_id, head.global_position AS head_global_position, p.*
         FROM (SELECT h.transaction_id, h.global_position FROM es.events h
                ORDER BY h.transaction_id DESC, h.global_position DESC LIMIT 1) head
         LEFT JOIN LATERAL (${withKeys ? pageWithKeys : page}) p ON true
        ORDER BY p.transaction_id, p.global_position`,
      values: params,
    });
    const dataKeys = new Map<string, StoredDataKey>();
    const first = rows[0];
    if (!first) return { events: [], dataKeys, scannedTo: from };
    const events = first.event_id === null || first.event_id === undefined ? [] : rows.map(toRecorded);
    if (withKeys) {
      for (const row of rows) {
        if (row.key_kid && row.key_user_id)
          dataKeys.set(row.key_kid, { userId: row.key_user_id, wrapped: row.key_wrapped ?? null });
      }
    }
    const head = encodePosition(BigInt(first.head_transaction_id), BigInt(first.head_global_position));
    const last = events.at(-1)?.position ?? from;
    const scannedTo = events.length < limit && head > last ? head : last;
    return { events, dataKeys, scannedTo: scannedTo > from ? scannedTo : from };
  };

  /**
   * The catch-up subscription behind `subscribeToAll` and `subscribeToAllWithKeys`. With keys, a page
   * read at the log's tail carries its data keys (a reader there reads a few events per page, and a key
   * query of its own would be a second round trip per page); a catch-up page — one after a full page —
   * does not, as one key query per 1,000 events costs less than a lookup per event. In a database
   * without the key tables (no process has created them yet) the subscription reads without keys.
   */
  async function* subscribe(subscribeOptions: SubscribeOptions, keyed: boolean): AsyncIterable<KeyedPage> {
    let withKeys = keyed;
    const signal = subscribeOptions.signal
      ? AbortSignal.any([subscribeOptions.signal, closing.signal])
      : closing.signal;
    const batchSize = subscribeOptions.batchSize ?? DEFAULT_BATCH_SIZE;
    let cursor = subscribeOptions.fromPosition ?? START_POSITION;
    decodePosition(cursor);
    let catchingUp = false;
    while (!signal.aborted) {
      const generation = wakeup.generation;
      let page: Awaited<ReturnType<typeof readPage>>;
      try {
        page = await readPage(cursor, subscribeOptions.filter, batchSize, withKeys && !catchingUp);
      } catch (error) {
        if (signal.aborted) return;
        if (withKeys && (error as { code?: unknown }).code === UNDEFINED_TABLE) {
          // The reader fetches the keys it needs itself, as without this option (it fails there if it
          // meets a sealed field while the tables are still missing).
          logger?.info('no data key tables in this database: the subscription reads pages without keys');
          withKeys = false;
          continue;
        }
        // Transient (restart, failover): keep the position and retry; the subscriber only sees a delay.
        logger?.warn({ err: error }, 'event store subscription read failed; retrying');
        await delay(pollIntervalMs * 4, undefined, { signal }).catch(() => undefined);
        continue;
      }
      cursor = page.scannedTo;
      if (page.events.length > 0) yield page;
      catchingUp = page.events.length >= batchSize;
      if (catchingUp) continue;
      await wakeup.wait(generation, pollIntervalMs, signal);
    }
  }

  /** Checks an append (a refusal rejects, never throws) and queues it for the next group commit. */
  const validatedAppend = (
    streamId: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
    keys: readonly DataKeyClaim[] = [],
  ): Promise<AppendResult> => {
    try {
      validateAppend(streamId, events, expected);
    } catch (error) {
      return Promise.reject(error);
    }
    return appender.append(streamId, events, expected, keys);
  };

  const store: PostgresEventStore = {
    append: (streamId, events, expected) => validatedAppend(streamId, events, expected),

    appendWithKeys: validatedAppend,

    async readStream(streamId: string, readOptions: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
      const backwards = readOptions.direction === 'backwards';
      const params: unknown[] = [streamId];
      let bound = '';
      if (readOptions.fromRevision !== undefined) {
        params.push(readOptions.fromRevision);
        bound = backwards ? `AND e.revision <= $2` : `AND e.revision >= $2`;
      }
      let limit = '';
      if (readOptions.maxCount !== undefined) {
        params.push(readOptions.maxCount);
        limit = `LIMIT $${params.length}`;
      }
      // Events past their stream's max age read as gone even before the scavenger deletes them.
      const { rows } = await pool.query<EventRow>(
        `SELECT ${EVENT_COLUMNS} FROM es.events e
           LEFT JOIN es.streams s ON s.stream_id = e.stream_id AND s.metadata ? 'maxAgeSeconds'
          WHERE e.stream_id = $1 ${bound}
            AND (s.stream_id IS NULL
                 OR e.created_at >= now() - make_interval(secs => (s.metadata->>'maxAgeSeconds')::double precision))
          ORDER BY e.revision ${backwards ? 'DESC' : 'ASC'} ${limit}`,
        params,
      );
      return rows.map(toRecorded);
    },

    async streamRevision(streamId: string): Promise<number> {
      const { rows } = await pool.query<{ revision: string }>({
        name: 'es_stream_revision',
        text: 'SELECT revision FROM es.streams WHERE stream_id = $1',
        values: [streamId],
      });
      return rows[0] ? Number(rows[0].revision) : -1;
    },

    async readAll(readOptions: ReadAllOptions = {}): Promise<RecordedEvent[]> {
      const page = await readPage(
        readOptions.fromPosition ?? START_POSITION,
        readOptions.filter,
        readOptions.maxCount ?? DEFAULT_BATCH_SIZE,
      );
      return page.events;
    },

    async *subscribeToAll(subscribeOptions: SubscribeOptions = {}): AsyncIterable<RecordedEvent[]> {
      for await (const page of subscribe(subscribeOptions, false)) yield page.events;
    },

    subscribeToAllWithKeys: (subscribeOptions = {}) => subscribe(subscribeOptions, true),

    async headPosition(): Promise<string> {
      const { rows } = await pool.query<{ transaction_id: string; global_position: string }>(
        `SELECT transaction_id, global_position FROM es.events
          ORDER BY transaction_id DESC, global_position DESC LIMIT 1`,
      );
      const row = rows[0];
      return row ? encodePosition(BigInt(row.transaction_id), BigInt(row.global_position)) : START_POSITION;
    },

    async setStreamMetadata(streamId: string, metadata: StreamMetadata): Promise<void> {
      await pool.query(
        `INSERT INTO es.streams (stream_id, revision, metadata) VALUES ($1, -1, $2::jsonb)
         ON CONFLICT (stream_id) DO UPDATE SET metadata = EXCLUDED.metadata`,
        [streamId, JSON.stringify(metadata)],
      );
    },

    async getStreamMetadata(streamId: string): Promise<StreamMetadata> {
      const { rows } = await pool.query<{ metadata: StreamMetadata }>(
        'SELECT metadata FROM es.streams WHERE stream_id = $1',
        [streamId],
      );
      const maxAgeSeconds = rows[0]?.metadata.maxAgeSeconds;
      return typeof maxAgeSeconds === 'number' ? { maxAgeSeconds } : {};
    },

    scavengeExpired,

    async ping(): Promise<void> {
      await pool.query('SELECT 1');
    },

    async close(): Promise<void> {
      if (closing.signal.aborted) return;
      closing.abort();
      if (scavengeTimer) clearInterval(scavengeTimer);
      await appender.drained();
      await wakeup.close();
      if (ownsPool) await pool.end();
    },
  };
  return store;
};

/** Adds the filter's conditions (server-side, so unmatched events never leave the database). */
const filterSql = (filter: EventFilter | undefined, params: unknown[]): string => {
  let sql = '';
  if (filter?.streamPrefixes) {
    params.push(filter.streamPrefixes.map((p) => `${p.replace(/[\\%_]/g, '\\$&')}%`));
    sql += ` AND e.stream_id LIKE ANY ($${params.length}::text[])`;
  }
  if (filter?.eventTypes) {
    params.push(filter.eventTypes);
    sql += ` AND e.type = ANY ($${params.length}::text[])`;
  }
  return sql;
};

const toRecorded = (row: Partial<EventRow>): RecordedEvent => {
  const r = row as EventRow;
  return upcastRecorded({
    id: r.event_id,
    type: r.type,
    streamId: r.stream_id,
    revision: Number(r.revision),
    position: encodePosition(BigInt(r.transaction_id), BigInt(r.global_position)),
    occurredAt: r.created_at.toISOString(),
    data: r.data,
    metadata: r.metadata,
  });
};
