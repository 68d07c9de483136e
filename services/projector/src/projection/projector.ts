import { READ_MODEL_CHECKPOINT, READ_MODEL_SCHEMA, type ReadModelDb, readCheckpoint } from '@chat/db';
import {
  decodePosition,
  type EventFilter,
  type EventStore,
  lingerAfter,
  type RecordedEvent,
} from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import { sql } from 'kysely';
import type { ProjectionMetrics } from './metrics.js';
import { type PublishUserMessage, publishUnread } from './unread.js';
import { projectBatch } from './writer.js';

/** Typing events never touch the read models; the store filters them out server-side. */
export const PROJECTED_STREAMS: EventFilter = { streamPrefixes: ['conversation-', 'receipts-', 'user-'] };

/**
 * Every transaction writing a schema's read models holds this lock shared; a rebuild's swap takes it
 * exclusively, so no live batch is half-way through while the schemas are renamed.
 */
export const applyLockKey = (schema: string): string => `read_models:apply:${schema}`;

export type ProjectorDeps = {
  store: EventStore;
  db: ReadModelDb;
  logger: Logger;
  metrics?: ProjectionMetrics;
  /** Where unread updates go (NATS in production); omitted, nothing is published. */
  publish?: PublishUserMessage;
  schema?: string;
  /** Largest batch per transaction: reached while catching up; live batches are as small as traffic. */
  batchSize?: number;
  /** Wait after a partial batch so the next one gathers more (see `lingerAfter`); 0 = none. */
  lingerMs?: number;
};

export type Projector = { run(signal: AbortSignal): Promise<void> };

/** Tails the log from the checkpoint and applies it to the read models, one transaction per batch. */
export const createProjector = (deps: ProjectorDeps): Projector => {
  const { store, db, metrics } = deps;
  const logger = deps.logger.child({ component: 'projection' });
  const schema = deps.schema ?? READ_MODEL_SCHEMA;
  const lockKey = applyLockKey(schema);
  return {
    async run(signal) {
      const from = await readCheckpoint(db, READ_MODEL_CHECKPOINT);
      logger.info({ from }, 'projection starting');
      setPosition(metrics, from);
      const batchSize = deps.batchSize ?? 2000;
      for await (const batch of store.subscribeToAll({
        fromPosition: from,
        filter: PROJECTED_STREAMS,
        batchSize,
        signal,
      })) {
        const result = await db.transaction().execute(async (trx) => {
          await sql`SELECT pg_advisory_xact_lock_shared(hashtextextended(${lockKey}, 0))`.execute(trx);
          return projectBatch(trx, schema, READ_MODEL_CHECKPOINT, batch, (event, err) => {
            metrics?.malformed.inc();
            logger.error({ err, eventId: event.id, position: event.position }, 'skipping malformed event');
          });
        });
        observe(metrics, batch, result.applied, result.position);
        if (deps.publish && result.applied > 0) {
          await publishUnread(db, result, deps.publish).catch((err: unknown) =>
            logger.warn({ err }, 'unread publish failed'),
          );
        }
        await lingerAfter(batch.length, batchSize, deps.lingerMs ?? 0, signal);
      }
    },
  };
};

const setPosition = (metrics: ProjectionMetrics | undefined, position: string): void => {
  metrics?.position.set(Number(decodePosition(position)[1]));
};

const observe = (
  metrics: ProjectionMetrics | undefined,
  batch: RecordedEvent[],
  applied: number,
  position: string,
): void => {
  if (!metrics || applied === 0) return;
  const now = Date.now();
  metrics.events.inc(applied);
  metrics.batches.observe(applied);
  for (const e of batch) metrics.lagSeconds.observe(Math.max(0, now - Date.parse(e.occurredAt)) / 1000);
  const last = batch.at(-1);
  if (last) metrics.lagMs.set(Math.max(0, now - Date.parse(last.occurredAt)));
  setPosition(metrics, position);
};
