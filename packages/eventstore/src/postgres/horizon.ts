import type pg from 'pg';
import { STREAM_LOCK_NAMESPACE } from './schema.js';

/**
 * The visibility horizon: the transaction id below which every transaction that could append an event
 * has finished, so reading `transaction_id < horizon` can never pass over an event that commits later.
 *
 * `pg_snapshot_xmin` would do, but it is the oldest transaction of the whole cluster: one long
 * transaction anywhere (another database, a consumer's batch) would hold back every subscriber. Only
 * appenders matter, and `es.append_batch` takes its streams' advisory locks before its first write, so
 * an appender holds such a lock for as long as it has a transaction id. The horizon is therefore the
 * oldest transaction id among this database's holders of those locks, or — with none in flight — the
 * snapshot's xmax (every id below it was assigned already).
 *
 * Callers must read events in a LATER statement than this one: an appender with an id below the horizon
 * was not holding its lock when pg_locks was read, so it had finished by then and its events are visible
 * to any snapshot taken afterwards. pg_locks reports 32-bit xids; they are widened to xid8 against xmax
 * (both lie within 2^31 of each other).
 */
const HORIZON_SQL = `
  WITH snap AS MATERIALIZED (SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS xmax),
  appenders AS (
    SELECT x.transactionid::text::bigint AS xid32
      FROM pg_locks a
      JOIN pg_locks x ON x.pid = a.pid AND x.locktype = 'transactionid' AND x.mode = 'ExclusiveLock' AND x.granted
     WHERE a.locktype = 'advisory' AND a.classid = ${STREAM_LOCK_NAMESPACE}::oid AND a.objsubid = 2
       AND a.granted AND a.database = (SELECT oid FROM pg_database WHERE datname = current_database()))
  SELECT least(snap.xmax,
               (SELECT min(snap.xmax - (((snap.xmax % 4294967296) - xid32 + 4294967296) % 4294967296))
                  FROM appenders))::text AS horizon
    FROM snap`;

export const readHorizon = async (pool: pg.Pool): Promise<string> => {
  const { rows } = await pool.query<{ horizon: string }>({ name: 'es_horizon', text: HORIZON_SQL });
  const horizon = rows[0]?.horizon;
  if (horizon === undefined) throw new Error('could not read the visibility horizon');
  return BigInt(horizon) < 0n ? '0' : horizon;
};
