import { EventRejectedError, runConsumer } from '@chat/consumer';
import { createReadModelDb, READ_MODEL_CHECKPOINT, READ_MODEL_SCHEMA } from '@chat/db';
import { STREAM_PREFIX } from '@chat/events';
import type { EventFilter, EventStore } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import { escapeLiteral, type Pool } from 'pg';
import type { Registry } from 'prom-client';
import { type PublishUserMessage, publishUnread } from './unread.js';
import { type BatchResult, projectEvents } from './writer.js';

/** Typing events never touch the read models; the store filters them out server-side. Reports (issue 16)
 * fill the moderation queue. */
export const PROJECTED_STREAMS: EventFilter = {
  streamPrefixes: [
    STREAM_PREFIX.conversation,
    STREAM_PREFIX.receipts,
    STREAM_PREFIX.user,
    STREAM_PREFIX.report,
  ],
};

/**
 * Every transaction writing a schema's read models holds this lock shared; a rebuild's swap takes it
 * exclusively, so no live batch is half-way through while the schemas are renamed.
 */
export const applyLockKey = (schema: string): string => `read_models:apply:${schema}`;

/** The leader lock of the live projection (also held by instances of earlier versions). */
export const PROJECTION_LOCK = 'projection:read_models';

export type ProjectorDeps = {
  store: EventStore;
  pool: Pool;
  logger: Logger;
  /** Metrics `projector_…`. */
  registry?: Registry;
  /** Where unread updates go (NATS in production); omitted, nothing is published. */
  publish?: PublishUserMessage;
  /** Largest batch per transaction: reached while catching up; live batches are as small as traffic. */
  batchSize?: number;
  /** Wait after a partial batch so the next one gathers more (see `lingerAfter`); 0 = none. */
  lingerMs?: number;
  leaderRetryMs?: number;
};

export type Projector = { run(signal: AbortSignal): Promise<void> };

/**
 * How a live batch's statements are planned. A batch is a few small statements whose planning cost
 * more Postgres CPU than running them (the state load and the write CTE were planned on every batch):
 * they go as prepared statements on generic plans, planned once per connection — left to itself
 * Postgres keeps planning the state load (a custom plan for the actual arrays always looks cheaper).
 * A generic plan is kept until an ANALYZE or DDL invalidates it, so one made while the tables were
 * small (a fresh deployment) would scan them whole for ever after: a hash join over a sequential scan
 * of `members`, 10 ms per batch at 50,000 members. Every statement of a live batch reaches its rows by
 * key, so sequential scans and hash joins are off, as for the event store's connections.
 */
const BATCH_PLAN_SETTINGS =
  'SET LOCAL plan_cache_mode = force_generic_plan; SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off';

/**
 * The live read-model projection, a client of the consumer runtime: one transaction per batch with
 * the checkpoint (`read_models`) and the apply lock; after each commit, unread updates for the users
 * whose counts changed for a reason a client cannot see in its events (a MarkRead, the deletion of a
 * message they had not read). An event it cannot apply is quarantined.
 */
export const createProjector = (deps: ProjectorDeps): Projector => {
  const schema = READ_MODEL_SCHEMA;
  const lockKey = applyLockKey(schema);
  const readModels = createReadModelDb(deps.pool, schema);
  const logger = deps.logger.child({ component: 'projection' });
  return {
    run: (signal) =>
      runConsumer<BatchResult>(
        {
          name: READ_MODEL_CHECKPOINT,
          store: deps.store,
          pool: deps.pool,
          logger,
          filter: PROJECTED_STREAMS,
          batchSize: deps.batchSize ?? 2000,
          lingerMs: deps.lingerMs ?? 0,
          lockName: PROJECTION_LOCK,
          ...(deps.leaderRetryMs === undefined ? {} : { leaderRetryMs: deps.leaderRetryMs }),
          ...(deps.registry
            ? { metrics: { registry: deps.registry, prefix: 'projector', eventsBehind: true } }
            : {}),
          checkpoint: 'in-transaction',
          synchronousCommit: false,
          // In BEGIN's round trip (no parameters there: the key, a constant of this module, as a literal),
          // and the batch's plan settings (BATCH_PLAN_SETTINGS).
          beginStatement: `SELECT pg_advisory_xact_lock_shared(hashtextextended(${escapeLiteral(lockKey)}, 0)); ${BATCH_PLAN_SETTINGS}`,
          applyBatch: (events, client) =>
            projectEvents(
              createReadModelDb(client, schema, { preparedStatements: true }),
              schema,
              events,
              (event, error) => {
                throw new EventRejectedError(event, error.message, { cause: error });
              },
            ),
          afterCommit: async (result) => {
            if (!deps.publish || result.unreadPairs.size + result.deletedUnread.size === 0) return;
            await publishUnread(readModels, result, deps.publish);
          },
        },
        signal,
      ),
  };
};
