import type { RecordedEvent } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import { RETRY, withRetry } from '@chat/retry';
import type { PoolClient } from 'pg';
import { lockCheckpoint, saveCheckpoint } from './checkpoints.js';
import type { ConsumerMetrics } from './metrics.js';
import type { AfterEffectsOptions, ConsumerOptions, InTransactionOptions } from './options.js';
import { recordQuarantine, releaseQuarantined } from './quarantine.js';
import { transaction } from './transaction.js';
import { writeBehind } from './write-behind.js';

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

type Context = { metrics: ConsumerMetrics; logger: Logger; signal: AbortSignal };

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
  /** One transaction; `rolledBack` is told when `applyBatch` ran in one that did not commit. */
  const batchTransaction = async <T>(work: (client: PoolClient, applying: () => void) => Promise<T>) => {
    let applied = false;
    try {
      return await transaction(pool, async (client) => {
        await options.beginTransaction?.(client);
        return work(client, () => {
          applied = true;
        });
      });
    } catch (err) {
      if (applied) options.rolledBack?.();
      throw err;
    }
  };
  return {
    async commit(events) {
      const started = performance.now();
      const done = await batchTransaction(async (client, applying) => {
        const previous = await lockCheckpoint(client, name, { synchronousCommit });
        const fresh = events.filter((e) => e.position > previous);
        const last = fresh.at(-1);
        if (!last) return undefined;
        applying();
        const result = await options.applyBatch(fresh, client);
        await saveCheckpoint(client, name, last.position);
        return { result, fresh, position: last.position };
      });
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

const afterEffectsCommitter = <R>(options: AfterEffectsOptions<R>, context: Context): Committer => {
  const { pool, name } = options;
  // One checkpoint write per batch, overlapping the next batch: batches grow under load (the store
  // hands out what piled up meanwhile), so the write cost per event falls as the rate rises. A crash
  // before it lands repeats that batch, which is what at-least-once allows. The write waits for
  // Postgres to come back rather than failing a batch whose effects already happened.
  const writes = writeBehind();
  const save = (position: string) =>
    writes.start(() =>
      withRetry(RETRY.dependency, () => saveCheckpoint(pool, name, position), {
        signal: context.signal,
        onRetry: (err, n) => context.logger.warn({ err, attempt: n }, 'checkpoint write failed; retrying'),
      }),
    );
  return {
    async commit(events) {
      const last = events.at(-1);
      if (!last) return;
      const started = performance.now();
      const result = await options.applyBatch(events);
      context.metrics.committed(events, last.position, (performance.now() - started) / 1000);
      await save(last.position);
      await afterCommit(options, context, result, events);
    },
    async quarantine(event, failure) {
      await recordQuarantine(pool, name, event, failure);
      await save(event.position);
    },
    async reapply(event) {
      const result = await options.applyBatch([event]);
      await releaseQuarantined(pool, name, event.id);
      await afterCommit(options, context, result, [event]);
    },
    drain: writes.drain,
  };
};
