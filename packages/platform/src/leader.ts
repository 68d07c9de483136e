import type { Pool, PoolClient } from 'pg';
import type { Logger } from 'pino';
import { connectClient } from './pg.js';

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
    // Listens from checkout to release: a lock connection terminated at any moment (also during the
    // lock query) is a lost leadership, never an unhandled 'error' event that ends the process.
    const lost = new AbortController();
    const onError = (err: Error) => {
      if (lost.signal.aborted) return;
      logger.error({ err, lock: lockName }, 'leader connection lost');
      lost.abort(err);
    };
    const release = () => {
      client?.off('error', onError);
      client?.release(lost.signal.aborted);
      client = undefined;
    };
    try {
      client = await connectClient(pool);
      client.on('error', onError);
      const { rows } = await client.query<{ locked: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
        [lockName],
      );
      if (!rows[0]?.locked) {
        release();
        await sleep(retryMs, signal);
        continue;
      }
      logger.info({ lock: lockName }, 'acquired leadership');
      const onAbort = () => lost.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      try {
        await options.run(lost.signal);
      } finally {
        signal.removeEventListener('abort', onAbort);
      }
      await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [lockName]).catch(() => {});
      release();
    } catch (err) {
      if (signal.aborted) break;
      logger.error({ err, lock: lockName }, 'leader loop failed; retrying');
      if (client) lost.abort(err);
      release();
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
