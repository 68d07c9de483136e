import { sql } from 'kysely';
import { READ_MODEL_CHECKPOINT, type ReadModelDb } from './database.js';
import { START_POSITION_TEXT } from './positions.js';

/**
 * The position a consumer (by default the projection) has applied up to, from `consumers.checkpoints`;
 * the start of the log when it has applied nothing.
 */
export const readCheckpoint = async (
  db: ReadModelDb,
  name: string = READ_MODEL_CHECKPOINT,
): Promise<string> => {
  const { rows } = await sql<{ position: string }>`
    SELECT position FROM consumers.checkpoints WHERE name = ${name}`.execute(db);
  return rows[0]?.position ?? START_POSITION_TEXT;
};
