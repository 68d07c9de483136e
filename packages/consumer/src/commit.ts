import type { RecordedEvent } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import { RETRY, withRetry } from '@chat/retry';
import type { PoolClient } from 'pg';
import { lockCheckpoint, saveCheckpoint, saveCheckpointSql } from './checkpoints.js';
import type { ConsumerMetrics } from './metrics.js';
import type { AfterEffectsOptions, ConsumerOptions, InTransactionOptions } from './options.js';
import { recordQuarantine, releaseQuarantined } from './quarantine.js';
import { transaction } from './transaction.js';

export type Failure = { error: string; attempts: number; firstFailedAt: Date };

/** How a consumer's effects and checkpoint are committed; one implementation per checkpoint mode. */
export type Committer = {
  /** Applies the events and moves the checkpoint past them. */
  commit(events: readonly RecordedEvent[]): Promise<void>;
  /** Records the event as quarantined and moves the checkpoint past it. */
  quarantine(event: RecordedEvent, failure: Failure): Promise<void>;
  /** Applies a quarantined event again (the checkpoint is already past it); on success it leaves the quarantine. */
  reapply(event: RecordedEvent): Promise<void>;
  /** Resolves when every checkpoint write has landed. */
  drain(): Promise<void>;
};

type Context = {
  metrics: ConsumerMetrics;
  logger: Logger;
  signal: AbortSignal;
  /** Ends the current read of the log, so the consumer resumes from its checkpoint. */
  resume: () => void;
};

export const createCommitter = <R>(options: ConsumerOptions<R>, context: Context): Committer =>
  options.checkpoint === 'in-transaction'
    ? transactionalCommitter(options, context)
    : afterEffectsCommitter(options, context);

const afterCommit = async <R>(
  options: ConsumerOptions<R>,
  { logger }: Context,
  result: R,
  events: readonly RecordedEvent[],
): Promise<void> => {
  try {
    await options.afterCommit?.(result, events);
  } catch (err) {
    logger.warn({ err }, 'after-commit step failed (the batch is committed)');
  }
};

const transactionalCommitter = <R>(options: InTransactionOptions<R>, context: Context): Committer => {
  const { pool, name } = options;
  const synchronousCommit = options.synchronousCommit ?? true;
  /**
   * One transaction; `rolledBack` is told when `applyBatch` ran in one that did not commit.
   * `beginStatement` rides on BEGIN's round trip, `beforeCommit`'s statement on COMMIT's.
   */
  const batchTransaction = async <T>(
    work: (client: PoolClient, applying: () => void) => Promise<T>,
    beforeCommit?: (out: T) => string | undefined,
  ) => {
    let applied = false;
    try {
      return await transaction(
        pool,
        async (client) => {
          await options.beginTransaction?.(client);
          return work(client, () => {
            applied = true;
          });
        },
        {
          ...(options.beginStatement ? { begin: options.beginStatement } : {}),
          ...(beforeCommit ? { beforeCommit } : {}),
        },
      );
    } catch (err) {
      if (applied) options.rolledBack?.();
      throw err;
    }
  };
  return {
    async commit(events) {
      const started = performance.now();
      const quiet = options.withoutWrites?.(events);
      const last = events.at(-1);
      if (quiet !== undefined && last) {
        // Forward-only, so a batch committed meanwhile by another leader is never rewound.
        await saveCheckpoint(pool, name, last.position);
        context.metrics.batchesWithoutWrites.inc();
        context.metrics.committed(events, last.position, (performance.now() - started) / 1000);
        await afterCommit(options, context, quiet, events);
        return;
      }
      // The checkpoint moves in the COMMIT's round trip: a live batch pays one round trip less.
      const done = await batchTransaction(
        async (client, applying) => {
          const previous = await lockCheckpoint(client, name, { synchronousCommit });
          const fresh = events.filter((e) => e.position > previous);
          const last = fresh.at(-1);
          if (!last) return undefined;
          applying();
          const result = await options.applyBatch(fresh, client);
          return { result, fresh, position: last.position };
        },
        (out) => (out ? saveCheckpointSql(name, out.position) : undefined),
      );
      if (!done) return;
      context.metrics.committed(done.fresh, done.position, (performance.now() - started) / 1000);
      await afterCommit(options, context, done.result, done.fresh);
    },
    async quarantine(event, failure) {
      await batchTransaction(async (client) => {
        const previous = await lockCheckpoint(client, name, { synchronousCommit });
        if (event.position <= previous) return;
        await recordQuarantine(client, name, event, failure);
        await saveCheckpoint(client, name, event.position);
      });
    },
    async reapply(event) {
      const result = await batchTransaction(async (client, applying) => {
        applying();
        const out = await options.applyBatch([event], client);
        await releaseQuarantined(client, name, event.id);
        return out;
      });
      await afterCommit(options, context, result, [event]);
    },
    drain: async () => {},
  };
};

/**
 * An after-effects consumer could not confirm effects it applied (`settleEffects` or the checkpoint write
 * failed): some of them may be lost, so the consumer resumes from its checkpoint and applies everything
 * after it again, rather than going on from where it was.
 */
export class UnsettledEffectsError extends Error {
  override readonly name = 'UnsettledEffectsError';
}

const afterEffectsCommitter = <R>(options: AfterEffectsOptions<R>, context: Context): Committer => {
  const { pool, name } = options;
  const everyMs = options.checkpointEveryMs ?? 0;
  // Checkpoint writes overlap the next batches: batches grow under load (the store hands out what piled
  // up meanwhile), and with `checkpointEveryMs` a write covers every batch of its interval, so the write
  // cost per event falls as the rate rises. A crash before a write lands repeats the events since the
  // previous one, which is what at-least-once allows. The write waits for Postgres to come back rather
  // than failing a batch whose effects already happened.
  /** The write in flight; it never rejects (a failure is kept in `unsettled`). */
  let inFlight: Promise<void> = Promise.resolve();
  /** Why effects since the last checkpoint may be lost; set until the consumer resumes (`drain`). */
  let unsettled: unknown;
  /** Applied, not yet checkpointed. */
  let pending: string | undefined;
  let lastWrite = 0;
  let trailing: NodeJS.Timeout | undefined;
  const write = async (position: string): Promise<void> => {
    try {
      await options.settleEffects?.();
      await withRetry(RETRY.dependency, () => saveCheckpoint(pool, name, position), {
        signal: context.signal,
        onRetry: (err, n) => context.logger.warn({ err, attempt: n }, 'checkpoint write failed; retrying'),
      });
    } catch (err) {
      if (context.signal.aborted) return;
      unsettled ??= err;
      context.logger.warn({ err }, 'effects could not be confirmed; resuming from the checkpoint');
      context.resume();
    }
  };
  /** Starts the write of `pending` once the previous write has landed; resolves when it has started. */
  const save = async (): Promise<void> => {
    clearTimeout(trailing);
    trailing = undefined;
    const position = pending;
    pending = undefined;
    await inFlight;
    if (position === undefined || unsettled !== undefined) return;
    lastWrite = performance.now();
    inFlight = write(position);
  };
  /** After a batch: write now when the interval has passed, else once it has (unless a batch does first). */
  const saveSoon = async (position: string): Promise<void> => {
    pending = position;
    const wait = lastWrite + everyMs - performance.now();
    if (wait <= 0) return save();
    trailing ??= setTimeout(() => void save(), wait);
  };
  const ensureSettled = (): void => {
    if (unsettled !== undefined)
      throw new UnsettledEffectsError('effects since the last checkpoint may be lost; resuming from it', {
        cause: unsettled,
      });
  };
  return {
    async commit(events) {
      const last = events.at(-1);
      if (!last) return;
      ensureSettled();
      const started = performance.now();
      const result = await options.applyBatch(events);
      context.metrics.committed(events, last.position, (performance.now() - started) / 1000);
      await saveSoon(last.position);
      await afterCommit(options, context, result, events);
    },
    async quarantine(event, failure) {
      ensureSettled();
      await recordQuarantine(pool, name, event, failure);
      pending = event.position;
      await save();
    },
    async reapply(event) {
      const result = await options.applyBatch([event]);
      await options.settleEffects?.();
      await releaseQuarantined(pool, name, event.id);
      await afterCommit(options, context, result, [event]);
    },
    /**
     * Writes what is applied but not yet checkpointed and waits for it (the leader stops or resumes from
     * the checkpoint). A failure is forgotten here: whoever reads the checkpoint next applies again
     * everything after it.
     */
    drain: async () => {
      await save();
      await inFlight;
      unsettled = undefined;
    },
  };
};
