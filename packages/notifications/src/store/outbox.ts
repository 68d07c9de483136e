import type { Db } from './db.js';

export type OutboxEntry = { deliveryId: string; recipientId: string; payload: string };

/** Writes webhook deliveries; called in the same transaction as the records they announce. */
export const enqueueDeliveries = async (db: Db, entries: readonly OutboxEntry[]): Promise<void> => {
  if (entries.length === 0) return;
  await db.query(
    `INSERT INTO notifier.outbox (delivery_id, recipient_id, payload)
     SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]) ON CONFLICT (delivery_id) DO NOTHING`,
    [entries.map((e) => e.deliveryId), entries.map((e) => e.recipientId), entries.map((e) => e.payload)],
  );
};

export type ClaimedDelivery = { deliveryId: string; payload: string; attempts: number; leaseToken: string };

/**
 * Claims due deliveries for one worker. The claim pushes `next_attempt_at` out by the lease, so a
 * worker that dies mid-POST simply lets the row fall due again — no separate reaper. `SKIP LOCKED`
 * lets several notifier instances share the outbox without waiting on each other.
 */
export const claimDeliveries = async (
  db: Db,
  options: { limit: number; leaseMs: number; leaseToken: string },
): Promise<ClaimedDelivery[]> => {
  const { rows } = await db.query<{ delivery_id: string; payload: string; attempts: number }>(
    `UPDATE notifier.outbox o
        SET next_attempt_at = now() + make_interval(secs => $2::double precision / 1000), lease_token = $3
      WHERE o.delivery_id IN (
        SELECT delivery_id FROM notifier.outbox
         WHERE status = 'pending' AND next_attempt_at <= now()
         ORDER BY next_attempt_at
         LIMIT $1
         FOR UPDATE SKIP LOCKED)
      RETURNING o.delivery_id, o.payload, o.attempts`,
    [options.limit, options.leaseMs, options.leaseToken],
  );
  return rows.map((r) => ({
    deliveryId: r.delivery_id,
    payload: r.payload,
    attempts: r.attempts,
    leaseToken: options.leaseToken,
  }));
};

/** Records a successful attempt; false when the lease was lost to another worker meanwhile. */
export const markDelivered = async (db: Db, claim: ClaimedDelivery): Promise<boolean> => {
  const { rowCount } = await db.query(
    `UPDATE notifier.outbox
        SET status = 'delivered', attempts = attempts + 1, finished_at = now(), lease_token = NULL, last_error = NULL
      WHERE delivery_id = $1 AND lease_token = $2 AND status = 'pending'`,
    [claim.deliveryId, claim.leaseToken],
  );
  return rowCount === 1;
};

/**
 * Records a failed attempt: either schedules the next one after `retryInMs` or, at `maxAttempts`,
 * dead-letters the delivery. Returns the new status (null when the lease was lost).
 */
export const markFailed = async (
  db: Db,
  claim: ClaimedDelivery,
  failure: { error: string; retryInMs: number; maxAttempts: number },
): Promise<'pending' | 'dead' | null> => {
  const { rows } = await db.query<{ status: 'pending' | 'dead' }>(
    `UPDATE notifier.outbox
        SET attempts = attempts + 1,
            last_error = left($3, 1000),
            lease_token = NULL,
            status = CASE WHEN attempts + 1 >= $5 THEN 'dead' ELSE 'pending' END,
            finished_at = CASE WHEN attempts + 1 >= $5 THEN now() ELSE NULL END,
            next_attempt_at = now() + make_interval(secs => $4::double precision / 1000)
      WHERE delivery_id = $1 AND lease_token = $2 AND status = 'pending'
      RETURNING status`,
    [claim.deliveryId, claim.leaseToken, failure.error, failure.retryInMs, failure.maxAttempts],
  );
  return rows[0]?.status ?? null;
};

/** Deletes delivered rows older than `maxAgeSeconds`; dead letters stay until an operator acts. */
export const pruneDelivered = async (db: Db, maxAgeSeconds: number): Promise<number> => {
  const { rowCount } = await db.query(
    `DELETE FROM notifier.outbox
      WHERE status = 'delivered' AND finished_at < now() - make_interval(secs => $1::double precision)`,
    [maxAgeSeconds],
  );
  return rowCount ?? 0;
};

/** When the next pending delivery falls due (null if none), so an idle worker sleeps just long enough. */
export const nextDueAt = async (db: Db): Promise<Date | null> => {
  const { rows } = await db.query<{ at: Date | null }>(
    `SELECT min(next_attempt_at) AS at FROM notifier.outbox WHERE status = 'pending'`,
  );
  return rows[0]?.at ?? null;
};

export type OutboxStats = {
  pending: number;
  /** Pending deliveries that have failed at least once. */
  retrying: number;
  delivered: number;
  deadLettered: number;
  /** Age in seconds of the oldest pending delivery (0 when none). */
  oldestPendingSeconds: number;
};

/** Outbox figures for `/metrics` and `chatctl stats`. */
export const outboxStats = async (db: Db): Promise<OutboxStats> => {
  const { rows } = await db.query<{
    pending: number;
    retrying: number;
    delivered: number;
    dead: number;
    oldest: number | null;
  }>(
    `SELECT count(*) FILTER (WHERE status = 'pending')::int AS pending,
            count(*) FILTER (WHERE status = 'pending' AND attempts > 0)::int AS retrying,
            count(*) FILTER (WHERE status = 'delivered')::int AS delivered,
            count(*) FILTER (WHERE status = 'dead')::int AS dead,
            extract(epoch FROM now() - min(created_at) FILTER (WHERE status = 'pending'))::float8 AS oldest
       FROM notifier.outbox`,
  );
  const r = rows[0];
  return {
    pending: r?.pending ?? 0,
    retrying: r?.retrying ?? 0,
    delivered: r?.delivered ?? 0,
    deadLettered: r?.dead ?? 0,
    oldestPendingSeconds: r?.oldest ?? 0,
  };
};

/** What `chatctl webhooks list` filters on: `retrying` is a pending delivery that failed at least once. */
export type DeliveryState = 'pending' | 'retrying' | 'delivered' | 'dead';

export type DeliveryRow = {
  deliveryId: string;
  recipientId: string;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  createdAt: Date;
  /** When a pending delivery is tried next; null once finished. */
  nextAttemptAt: Date | null;
  /** When it was delivered or dead-lettered. */
  finishedAt: Date | null;
  lastError: string | null;
};

const stateFilter = (state: DeliveryState | undefined): string => {
  switch (state) {
    case undefined:
      return 'TRUE';
    case 'pending':
      return `status = 'pending'`;
    case 'retrying':
      return `status = 'pending' AND attempts > 0`;
    case 'delivered':
      return `status = 'delivered'`;
    case 'dead':
      return `status = 'dead'`;
    default: {
      const never: never = state;
      return never;
    }
  }
};

/** Deliveries in one state (or all) for operators: unfinished first, newest first, then the latest finished. */
export const listDeliveries = async (
  db: Db,
  options: { state?: DeliveryState; limit: number },
): Promise<DeliveryRow[]> => {
  const { rows } = await db.query<{
    delivery_id: string;
    recipient_id: string;
    status: DeliveryRow['status'];
    attempts: number;
    created_at: Date;
    next_attempt_at: Date;
    finished_at: Date | null;
    last_error: string | null;
  }>(
    `SELECT delivery_id, recipient_id, status, attempts, created_at, next_attempt_at, finished_at, last_error
       FROM notifier.outbox
      WHERE ${stateFilter(options.state)}
      ORDER BY finished_at DESC NULLS FIRST, created_at DESC, delivery_id
      LIMIT $1`,
    [options.limit],
  );
  return rows.map((r) => ({
    deliveryId: r.delivery_id,
    recipientId: r.recipient_id,
    status: r.status,
    attempts: r.attempts,
    createdAt: r.created_at,
    nextAttemptAt: r.status === 'pending' ? r.next_attempt_at : null,
    finishedAt: r.finished_at,
    lastError: r.last_error,
  }));
};

/** Which dead letters to send again: all, some by id, or those dead-lettered at or after a time. */
export type RedriveSelection =
  | { kind: 'all' }
  | { kind: 'ids'; deliveryIds: readonly string[] }
  | { kind: 'since'; since: Date };

const redriveFilter = (selection: RedriveSelection): [string, unknown[]] => {
  switch (selection.kind) {
    case 'all':
      return ['TRUE', []];
    case 'ids':
      return ['delivery_id = ANY($1::uuid[])', [selection.deliveryIds]];
    case 'since':
      return ['finished_at >= $1', [selection.since]];
    default: {
      const never: never = selection;
      return never;
    }
  }
};

/**
 * Moves dead-lettered deliveries back to pending, due now, with their attempts reset, so each gets
 * the webhook retry policy's full run again; the last error stays until the next attempt replaces it.
 * Only dead rows change: a pending or delivered delivery is never sent a second time by a redrive.
 * Returns the ids moved.
 */
export const redriveDeliveries = async (db: Db, selection: RedriveSelection): Promise<string[]> => {
  const [where, params] = redriveFilter(selection);
  const { rows } = await db.query<{ delivery_id: string }>(
    `UPDATE notifier.outbox
        SET status = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL, lease_token = NULL
      WHERE status = 'dead' AND ${where}
      RETURNING delivery_id`,
    params,
  );
  return rows.map((r) => r.delivery_id);
};
