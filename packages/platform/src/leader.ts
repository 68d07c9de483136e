import type { Pool, PoolClient } from 'pg';
import type { Logger } from 'pino';

/**
 * One leader per projection/relay/notifier (DESIGN.md "Operations"): a session-level Postgres advisory
 * lock held on a dedicated connection. Standbys retry every `retryMs`; if the leader's connection
 * dies, Postgres releases the lock and a standby takes over.
 */
export const runAsLeader = async (options: {
  pool: Pool;
  lockName: string;
  logger: Logger;
  signal: AbortSignal;
  retryMs?: number;
  /** Runs while the lock is held; must return when `signal` aborts. `lost` aborts if the lock connection dies. */
  run: (lost: AbortSignal) => Promise<void>;
}): Promise<void> => {
  const { pool, lockName, logger, signal } = options;
  const retryMs = options.retryMs ?? 1000;
  while (!signal.aborted) {
    let client: PoolClient | undefined;
    try {
      client = await pool.connect();
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [lockName],
      );
      if (!rows[0]?.locked) {
        client.release();
        client = undefined;
        await sleep(retryMs, signal);
        continue;
      }
      logger.info({ lock: lockName }, 'acquired leadership');
      const lost = new AbortController();
      const onAbort = () => lost.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      client.once('error', (err) => {
        logger.error({ err, lock: lockName }, 'leader connection lost');
        lost.abort(err);
      });
      try {
        await options.run(lost.signal);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockName]).catch(() => {});
      client.release();
      client = undefined;
    } catch (err) {
      if (signal.aborted) break;
      logger.error({ err, lock: lockName }, 'leader loop failed; retrying');
      client?.release(true);
      client = undefined;
      await sleep(retryMs, signal);
    }
  }
};

export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
