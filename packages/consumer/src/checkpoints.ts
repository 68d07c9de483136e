import { isValidPosition, START_POSITION } from '@chat/eventstore';
import { escapeLiteral, type Pool, type PoolClient } from 'pg';

/** A pool or a client inside a transaction: the caller owns the transaction. */
export type Db = Pool | PoolClient;

/** The position a consumer has applied up to; undefined when it has never run. */
export const readCheckpoint = async (db: Db, name: string): Promise<string | undefined> => {
  const { rows } = await db.query<{ position: string }>(
    'SELECT position FROM consumers.checkpoints WHERE name = $1',
    [name],
  );
  return rows[0]?.position;
};

/** Creates the consumer's row at the start of the log if it has none, so batches can lock it. */
export const ensureCheckpoint = async (db: Db, name: string): Promise<void> => {
  await db.query(
    'INSERT INTO consumers.checkpoints (name, position) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
    [name, START_POSITION],
  );
};

/**
 * First statement of a batch transaction: locks the consumer's row and returns its position. A second
 * transaction of the same consumer (a deposed leader's last batch, a rebuild's swap) waits here and
 * then sees the position the first one committed, so it skips what that one applied. Asynchronous
 * commit, when asked for, is safe because the checkpoint commits with the effects: a commit lost in a
 * crash is re-applied from the older checkpoint.
 */
export const lockCheckpoint = async (
  client: PoolClient,
  name: string,
  options: { synchronousCommit: boolean },
): Promise<string> => {
  const { rows } = await client.query<{ position: string }>(
    options.synchronousCommit
      ? 'SELECT position FROM consumers.checkpoints WHERE name = $1 FOR UPDATE'
      : `SELECT position, set_config('synchronous_commit', 'off', true)
           FROM consumers.checkpoints WHERE name = $1 FOR UPDATE`,
    [name],
  );
  return rows[0]?.position ?? START_POSITION;
};

/** The forward-only checkpoint write, for `values` (name, position): placeholders or literals. */
const saveCheckpointStatement = (values: string): string =>
  `INSERT INTO consumers.checkpoints AS c (name, position) VALUES (${values})
     ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()
     WHERE c.position < excluded.position`;

/** Moves the checkpoint forward; never back, so a deposed leader's late write cannot rewind it. */
export const saveCheckpoint = async (db: Db, name: string, position: string): Promise<void> => {
  await db.query(saveCheckpointStatement('$1, $2'), [name, position]);
};

/**
 * `saveCheckpoint` as statement text with its values inlined, for the COMMIT round trip of a batch
 * (`transaction`'s `beforeCommit`): a position is 32 hex digits, checked here; the name is a quoted literal (`escapeLiteral`).
 */
export const saveCheckpointSql = (name: string, position: string): string => {
  if (!isValidPosition(position)) throw new RangeError(`invalid position "${position}"`);
  return saveCheckpointStatement(`${escapeLiteral(name)}, '${position}'`);
};

export type CheckpointRow = { name: string; position: string; updatedAt: Date };

/** Every consumer's checkpoint (also a running rebuild's), by name. */
export const listCheckpoints = async (db: Db): Promise<CheckpointRow[]> => {
  const { rows } = await db.query<{ name: string; position: string; updated_at: Date }>(
    'SELECT name, position, updated_at FROM consumers.checkpoints ORDER BY name',
  );
  return rows.map((r) => ({ name: r.name, position: r.position, updatedAt: r.updated_at }));
};

/** Removes a checkpoint (a finished or abandoned rebuild's). */
export const deleteCheckpoint = async (db: Db, name: string): Promise<void> => {
  await db.query('DELETE FROM consumers.checkpoints WHERE name = $1', [name]);
};
