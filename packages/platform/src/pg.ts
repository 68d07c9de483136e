import type { Pool, PoolClient } from 'pg';

const listening = new WeakSet<PoolClient>();
const ignore = () => {};

/**
 * `pool.connect()` with an 'error' listener on the client from the moment the pool hands it over. A
 * connection terminated in the same network read that completed it, or between two queries, would
 * otherwise emit 'error' with nobody listening — an uncaught exception that ends the process — before
 * the caller could add a listener. The error still fails the query in flight, and the pool drops the
 * client when it is released.
 */
export const connectClient = (pool: Pool): Promise<PoolClient> =>
  new Promise((resolve, reject) => {
    pool.connect((err, client) => {
      if (err || !client) return reject(err ?? new Error('the pool handed out no client'));
      if (!listening.has(client)) {
        client.on('error', ignore);
        listening.add(client);
      }
      resolve(client);
    });
  });

/**
 * Names this process's Postgres sessions (`application_name`, through libpq's PGAPPNAME, which
 * node-postgres reads for every connection whose URL names none): `pg_stat_activity`, the log's
 * "append lock held by …" errors and per-service CPU figures then tell the services apart. An
 * operator's own PGAPPNAME wins. Call it before the first connection.
 */
export const nameDatabaseSessions = (name: string): void => {
  process.env.PGAPPNAME ??= name;
};
