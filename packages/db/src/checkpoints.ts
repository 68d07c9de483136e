import { READ_MODEL_CHECKPOINT, type ReadModelDb } from './database.js';
import { START_POSITION_TEXT } from './positions.js';

/** The position the projection has applied up to (the start of the log when it has applied nothing). */
export const readCheckpoint = async (
  db: ReadModelDb,
  name: string = READ_MODEL_CHECKPOINT,
): Promise<string> => {
  const row = await db
    .selectFrom('checkpoints')
    .select('position')
    .where('name', '=', name)
    .executeTakeFirst();
  return row?.position ?? START_POSITION_TEXT;
};
