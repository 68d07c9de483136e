import { STREAM_LOCK_NAMESPACE } from './schema.js';

/**
 * The visibility horizon as a `WITH` list defining `horizon(xmin xid8)`: the transaction id below which
 * every transaction that could still append an event has ended, so a read of `transaction_id < xmin` in
 * the same statement can never pass over an event that commits later.
 *
 * `pg_snapshot_xmin` would do, but it is the oldest transaction of the whole cluster: one long writing
 * transaction anywhere (another database, a consumer's batch) would hold every subscriber back for its
 * duration. So the horizon is the oldest transaction still in flight in this statement's snapshot that
 * is not _proven_ to be a non-appender, or the snapshot's xmax with none:
 *
 * - `es.append_batch` takes its streams' advisory locks before its first write, so an appender holds
 *   such a lock from before its transaction id exists until it ends, and it is the transaction's first
 *   write, so a transaction that already has an id never becomes an appender later.
 * - A transaction is proven a non-appender when pg_locks (read once, after the snapshot) shows the lock
 *   on its id and no stream lock held by the same transaction. Anything unproven counts as an appender:
 *   an id assigned a moment before its own lock appears, a transaction that ended meanwhile. That only
 *   holds a page back until the next read, never lets one skip an event.
 *
 * Every transaction below the horizon is then committed or aborted in the snapshot, or writes no events,
 * and the statement's reads of es.events use that same snapshot.
 */
export const HORIZON_CTE = `
  snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
  locks AS MATERIALIZED (
    SELECT l.locktype, l.virtualtransaction, l.transactionid, l.classid, l.objsubid, l.database
      FROM pg_locks l
     WHERE l.granted AND l.locktype IN ('transactionid', 'advisory')),
  horizon AS MATERIALIZED (
    SELECT least(pg_snapshot_xmax(snap.s), (
             SELECT min(f.x) FROM pg_snapshot_xip(snap.s) AS f(x)
              WHERE NOT EXISTS (
                SELECT 1 FROM locks t
                 WHERE t.locktype = 'transactionid' AND t.transactionid = xid(f.x)
                   AND t.virtualtransaction IS NOT NULL
                   AND NOT EXISTS (
                     SELECT 1 FROM locks a
                      WHERE a.locktype = 'advisory' AND a.virtualtransaction = t.virtualtransaction
                        AND a.classid = ${STREAM_LOCK_NAMESPACE}::oid AND a.objsubid = 2
                        AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database())))
           )) AS xmin
      FROM snap)`;
