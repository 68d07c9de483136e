import { connectClient } from '@chat/platform';
import type { Pool, PoolClient } from 'pg';

/** Statements sent in the round trip of BEGIN and of COMMIT (simple protocol: no parameters). */
export type TransactionEnds<T> = {
  /** Run right after BEGIN, in its round trip. */
  begin?: string;
  /** Run right before COMMIT, in its round trip (given what `work` returned). */
  beforeCommit?: (out: T) => string | undefined;
};

/**
 * Runs `work` in one transaction on a client of `pool`: BEGIN, work, COMMIT; ROLLBACK when anything
 * fails. A client whose connection broke meanwhile (admin termination, a Postgres restart) is
 * destroyed, not returned to the pool. `ends` adds statements to the BEGIN and COMMIT round trips (a
 * statement that fails there skips the rest of its round trip, COMMIT included, and rolls back).
 */
export const transaction = async <T>(
  pool: Pool,
  work: (client: PoolClient) => Promise<T>,
  ends: TransactionEnds<T> = {},
): Promise<T> => {
  const client = await connectClient(pool);
  let broken = false;
  const onError = () => {
    broken = true;
  };
  client.on('error', onError);
  try {
    await client.query(ends.begin ? `BEGIN; ${ends.begin}` : 'BEGIN');
    const out = await work(client);
    const last = ends.beforeCommit?.(out);
    await client.query(last ? `${last}; COMMIT` : 'COMMIT');
    return out;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      broken = true;
    });
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
};
