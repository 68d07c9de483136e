import type { RecordedEvent } from '@chat/eventstore';
import type { Db } from './checkpoints.js';
import { storableText } from './failures.js';

/** An event a consumer could not apply and stepped over, with what went wrong. */
export type QuarantinedEvent = {
  consumer: string;
  eventId: string;
  position: string;
  streamId: string;
  revision: number;
  type: string;
  error: string;
  attempts: number;
  firstFailedAt: Date;
  lastFailedAt: Date;
  /** Set by `chatctl quarantine retry` until the consumer has tried again. */
  retryRequestedAt: Date | null;
};

type Row = {
  consumer: string;
  event_id: string;
  position: string;
  stream_id: string;
  revision: string;
  event_type: string;
  error: string;
  attempts: number;
  first_failed_at: Date;
  last_failed_at: Date;
  retry_requested_at: Date | null;
};

const COLUMNS = `consumer, event_id, position, stream_id, revision, event_type, error, attempts,
  first_failed_at, last_failed_at, retry_requested_at`;

const toQuarantined = (r: Row): QuarantinedEvent => ({
  consumer: r.consumer,
  eventId: r.event_id,
  position: r.position,
  streamId: r.stream_id,
  revision: Number(r.revision),
  type: r.event_type,
  error: r.error,
  attempts: r.attempts,
  firstFailedAt: r.first_failed_at,
  lastFailedAt: r.last_failed_at,
  retryRequestedAt: r.retry_requested_at,
});

/** Records (or, met again after a checkpoint reset, updates) a quarantined event. */
export const recordQuarantine = async (
  db: Db,
  consumer: string,
  event: RecordedEvent,
  failure: { error: string; attempts: number; firstFailedAt: Date },
): Promise<void> => {
  await db.query(
    `INSERT INTO consumers.quarantine AS q
       (consumer, event_id, position, stream_id, revision, event_type, error, attempts, first_failed_at, last_failed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
     ON CONFLICT (consumer, event_id) DO UPDATE
       SET error = excluded.error, attempts = q.attempts + excluded.attempts,
           last_failed_at = excluded.last_failed_at, retry_requested_at = NULL`,
    [
      consumer,
      event.id,
      event.position,
      storableText(event.streamId),
      event.revision,
      storableText(event.type),
      storableText(failure.error),
      failure.attempts,
      failure.firstFailedAt,
    ],
  );
};

/** Quarantined events in log order, of one consumer or of all. */
export const listQuarantine = async (db: Db, consumer?: string): Promise<QuarantinedEvent[]> => {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM consumers.quarantine
      WHERE $1::text IS NULL OR consumer = $1 ORDER BY consumer, position`,
    [consumer ?? null],
  );
  return rows.map(toQuarantined);
};

/** How many events a consumer has quarantined now. */
export const quarantineSize = async (db: Db, consumer: string): Promise<number> => {
  const { rows } = await db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM consumers.quarantine WHERE consumer = $1',
    [consumer],
  );
  return rows[0]?.n ?? 0;
};

/**
 * Asks the consumer's leader to apply these quarantined events again (all of the consumer's when
 * `eventIds` is 'all'). Returns the requests made, each with the time it was made.
 */
export const requestRetry = async (
  db: Db,
  consumer: string,
  eventIds: readonly string[] | 'all',
): Promise<{ eventId: string; requestedAt: Date }[]> => {
  const { rows } = await db.query<{ event_id: string; retry_requested_at: Date }>(
    `UPDATE consumers.quarantine SET retry_requested_at = clock_timestamp()
      WHERE consumer = $1 AND ($2::text[] IS NULL OR lower(event_id) = ANY($2::text[]))
      RETURNING event_id, retry_requested_at`,
    [consumer, eventIds === 'all' ? null : eventIds.map((id) => id.toLowerCase())],
  );
  return rows.map((r) => ({ eventId: r.event_id, requestedAt: r.retry_requested_at }));
};

/** The consumer's events with a pending retry request, in log order. */
export const retryRequests = async (db: Db, consumer: string): Promise<QuarantinedEvent[]> => {
  const { rows } = await db.query<Row>(
    `SELECT ${COLUMNS} FROM consumers.quarantine
      WHERE consumer = $1 AND retry_requested_at IS NOT NULL ORDER BY position`,
    [consumer],
  );
  return rows.map(toQuarantined);
};

/** A retried event applied: it leaves the quarantine. */
export const releaseQuarantined = async (db: Db, consumer: string, eventId: string): Promise<void> => {
  await db.query('DELETE FROM consumers.quarantine WHERE consumer = $1 AND event_id = $2', [
    consumer,
    eventId,
  ]);
};

/** A retried event failed again: it stays, with the new error and the request answered. */
export const retryFailed = async (
  db: Db,
  consumer: string,
  eventId: string,
  error: string,
): Promise<void> => {
  await db.query(
    `UPDATE consumers.quarantine
        SET attempts = attempts + 1, error = $3, last_failed_at = now(), retry_requested_at = NULL
      WHERE consumer = $1 AND event_id = $2`,
    [consumer, eventId, storableText(error)],
  );
};

/**
 * Replaces a consumer's whole quarantine (a rebuild that replayed the log in order knows exactly which
 * events it could not apply); in the caller's transaction.
 */
export const replaceQuarantine = async (
  db: Db,
  consumer: string,
  events: readonly { event: RecordedEvent; error: string }[],
): Promise<void> => {
  await db.query('DELETE FROM consumers.quarantine WHERE consumer = $1', [consumer]);
  const now = new Date();
  for (const { event, error } of events) {
    await recordQuarantine(db, consumer, event, { error, attempts: 1, firstFailedAt: now });
  }
};

export type RetryOutcome =
  | { eventId: string; outcome: 'applied' }
  | { eventId: string; outcome: 'failed'; error: string }
  | { eventId: string; outcome: 'pending' };

/**
 * Where the retries asked for by `requestRetry` stand: applied (the event left the quarantine), failed
 * again (the consumer answered the request; the event stays), or not tried yet.
 */
export const retryOutcomes = async (
  db: Db,
  consumer: string,
  eventIds: readonly string[],
): Promise<RetryOutcome[]> => {
  const { rows } = await db.query<{ event_id: string; error: string; retry_requested_at: Date | null }>(
    `SELECT event_id, error, retry_requested_at FROM consumers.quarantine
      WHERE consumer = $1 AND event_id = ANY($2::text[])`,
    [consumer, eventIds],
  );
  const byId = new Map(rows.map((r) => [r.event_id, r]));
  return eventIds.map((eventId): RetryOutcome => {
    const row = byId.get(eventId);
    if (!row) return { eventId, outcome: 'applied' };
    return row.retry_requested_at === null
      ? { eventId, outcome: 'failed', error: row.error }
      : { eventId, outcome: 'pending' };
  });
};
