import pg from 'pg';
import { adminDatabaseUrl } from './infra.js';

/**
 * A Postgres outage as one client sees it: the database refuses new connections and every open
 * connection named `applicationName` is terminated, for `ms`; `during` runs meanwhile. Connections
 * `pool` already holds keep working (it is warmed up first), so the test can go on writing. With
 * `spare` (a LIKE pattern on the connection's last query), matching connections survive — e.g. a
 * consumer's leader lock, so it stays leader and meets the failure in its batches. Returns how many
 * of the client's backends were terminated.
 */
export const postgresOutage = async (
  pool: pg.Pool,
  options: {
    database: string;
    applicationName: string;
    ms: number;
    spare?: string;
    during?: () => Promise<void>;
  },
): Promise<number> => {
  const quoted = `"${options.database.replace(/"/g, '""')}"`;
  await Promise.all(Array.from({ length: pool.options.max ?? 4 }, () => pool.query('SELECT pg_sleep(0.05)')));
  let terminated = 0;
  // A database cannot refuse connections from a session inside it: the switch is made from outside.
  const admin = new pg.Client({ connectionString: adminDatabaseUrl() });
  await admin.connect();
  await admin.query(`ALTER DATABASE ${quoted} ALLOW_CONNECTIONS false`);
  try {
    const end = Date.now() + options.ms;
    const terminating = (async () => {
      while (Date.now() < end) {
        const { rows } = await pool.query<{ n: number }>(
          `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity
            WHERE datname = $1 AND application_name = $2 AND ($3::text IS NULL OR query NOT LIKE $3)`,
          [options.database, options.applicationName, options.spare ?? null],
        );
        terminated += rows[0]?.n ?? 0;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    await options.during?.();
    await terminating;
  } finally {
    await admin.query(`ALTER DATABASE ${quoted} ALLOW_CONNECTIONS true`);
    await admin.end();
  }
  return terminated;
};

/**
 * The two outages a log consumer (`runConsumer`) must ride out, one after the other: first its leader
 * keeps its lock — the leader meets the failure in its batches — then everything fails, leadership
 * too. `during` runs in each; `recovered` waits after each until the consumer has caught up (so a
 * consumer that blamed an event in the first has recorded it before the second begins).
 */
export const consumerOutages = async (
  pool: pg.Pool,
  options: {
    database: string;
    applicationName: string;
    ms: number;
    during: () => Promise<void>;
    recovered: () => Promise<unknown>;
  },
): Promise<number> => {
  let terminated = 0;
  for (const spare of ['%pg_try_advisory_lock%', undefined]) {
    terminated += await postgresOutage(pool, { ...options, ...(spare ? { spare } : {}) });
    await options.recovered();
  }
  return terminated;
};
