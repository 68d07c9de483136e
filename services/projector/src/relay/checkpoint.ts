import type pg from 'pg';

// The relay's own checkpoint: one row per relay name in schema `relay`, created idempotently so the
// relay needs no migration step of its own and never touches the projector's tables.

export const ensureRelaySchema = async (pool: pg.Pool): Promise<void> => {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS relay`);
  await pool.query(
    `CREATE TABLE IF NOT EXISTS relay.checkpoints (
       name text PRIMARY KEY,
       position text NOT NULL,
       updated_at timestamptz NOT NULL DEFAULT now()
     )`,
  );
};

export const loadCheckpoint = async (pool: pg.Pool, name: string): Promise<string | undefined> => {
  const { rows } = await pool.query<{ position: string }>(
    'SELECT position FROM relay.checkpoints WHERE name = $1',
    [name],
  );
  return rows[0]?.position;
};

export const saveCheckpoint = async (pool: pg.Pool, name: string, position: string): Promise<void> => {
  await pool.query(
    `INSERT INTO relay.checkpoints (name, position) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = now()
     WHERE relay.checkpoints.position < EXCLUDED.position`,
    [name, position],
  );
};
