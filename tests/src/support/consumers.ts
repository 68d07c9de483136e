import type pg from 'pg';

// Where the log consumers (projector, relay, notifier) keep their checkpoints and quarantined events.
// Today each has its own table; the one-table consumer runtime keeps them all in `consumers.*`. This is
// the one place that knows, so tests switch with it.

const ONE_TABLE = 'consumers.checkpoints';
const PER_CONSUMER_TABLES = ['read_models.checkpoints', 'relay.checkpoints', 'notifier.checkpoints'];
const QUARANTINE_TABLE = 'consumers.quarantine';

const tableExists = async (pool: pg.Pool, table: string): Promise<boolean> => {
  const { rows } = await pool.query<{ exists: boolean }>('SELECT to_regclass($1) IS NOT NULL AS exists', [
    table,
  ]);
  return rows[0]?.exists ?? false;
};

/** Every consumer's checkpoint, by `<table>:<name>` (positions are fixed-width hex: text order is log order). */
export const readConsumerCheckpoints = async (pool: pg.Pool): Promise<Record<string, string>> => {
  const tables = (await tableExists(pool, ONE_TABLE)) ? [ONE_TABLE] : PER_CONSUMER_TABLES;
  const out: Record<string, string> = {};
  for (const table of tables) {
    if (!(await tableExists(pool, table))) continue;
    const { rows } = await pool.query<{ name: string; position: string }>(
      `SELECT name, position FROM ${table}`,
    );
    for (const row of rows) out[`${table.split('.')[0]}:${row.name}`] = row.position;
  }
  return out;
};

/** The consumers a running system has: projector (read models), relay and notifier. */
export const EXPECTED_CONSUMERS = 3;

/** Events a consumer gave up on and set aside, or `undefined` where the system has no quarantine yet. */
export const readQuarantine = async (
  pool: pg.Pool,
): Promise<{ consumer: string; eventId: string; eventType: string; error: string }[] | undefined> => {
  if (!(await tableExists(pool, QUARANTINE_TABLE))) return undefined;
  const { rows } = await pool.query<{
    consumer: string;
    event_id: string;
    event_type: string;
    error: string;
  }>(`SELECT consumer, event_id, event_type, error FROM ${QUARANTINE_TABLE} ORDER BY consumer, position`);
  return rows.map((r) => ({
    consumer: r.consumer,
    eventId: r.event_id,
    eventType: r.event_type,
    error: r.error,
  }));
};
