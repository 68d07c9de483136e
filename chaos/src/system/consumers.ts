import { listCheckpoints } from '@chat/consumer';
import type pg from 'pg';

// Where every consumer of the log stands (projection, notifier, relay — and whatever consumer comes
// later): the consumer runtime's checkpoints, read over the run's own direct connection.

/** Suffix of a running rebuild's progress row: not a consumer of the live log. */
const REBUILD_SUFFIX = ':rebuild';

/** Consumer name → position. */
export const readCheckpoints = async (pool: pg.Pool): Promise<Record<string, string>> =>
  Object.fromEntries(
    (await listCheckpoints(pool))
      .filter((c) => !c.name.endsWith(REBUILD_SUFFIX))
      .map((c) => [c.name, c.position]),
  );
