import { lingerAfter, START_POSITION } from '@chat/eventstore';
import { type Logger, runAsLeader } from '@chat/platform';
import { RETRY, retryDelayMs, sleep } from '@chat/retry';
import { ensureCheckpoint, readCheckpoint } from './checkpoints.js';
import { type Committer, createCommitter } from './commit.js';
import { describeError, isTransient } from './failures.js';
import { commitOrIsolate, type Isolation } from './isolate.js';
import { createConsumerMetrics } from './metrics.js';
import type { ConsumerOptions } from './options.js';
import { type QuarantinedEvent, quarantineSize, retryFailed, retryRequests } from './quarantine.js';

const PROBE_TIMEOUT_MS = 5000;
const EVENTS_BEHIND_CAP = 10_000;

/**
 * The one consumer runtime (projector, relay, notifier): under leader election, tails the log from
 * the consumer's checkpoint, hands it batches (lingering after a partial one), commits them with the
 * checkpoint as its mode says, and never stops on an event — one that cannot be applied is
 * quarantined (see `commitOrIsolate`) and retried on request (`chatctl quarantine retry`).
 * Resolves once `signal` aborts and the current batch has finished.
 */
export const runConsumer = async <R>(options: ConsumerOptions<R>, signal: AbortSignal): Promise<void> => {
  const { name, pool, store } = options;
  const logger = options.logger.child({ consumer: name });
  const metrics = createConsumerMetrics(options.metrics?.registry, options.metrics?.prefix ?? name, {
    quarantineSize: () => quarantineSize(pool, name),
    ...(options.metrics?.eventsBehind
      ? {
          eventsBehind: async () =>
            (
              await store.readAll({
                fromPosition: (await readCheckpoint(pool, name)) ?? START_POSITION,
                maxCount: EVENTS_BEHIND_CAP,
                ...(options.filter ? { filter: options.filter } : {}),
              })
            ).length,
        }
      : {}),
  });
  const healthy = async (): Promise<boolean> => {
    const checks = Promise.all([pool.query('SELECT 1'), store.ping(), options.probe?.()]);
    const timeout = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('probe timed out')), PROBE_TIMEOUT_MS).unref(),
    );
    return Promise.race([checks, timeout]).then(
      () => true,
      () => false,
    );
  };

  const lead = async (lost: AbortSignal): Promise<void> => {
    // Aborted to end the current read of the log, so the loop resumes from the checkpoint.
    let reading = new AbortController();
    const context = { metrics, logger, signal: lost, resume: () => reading.abort() };
    const committer = createCommitter(options, context);
    const isolation: Isolation = {
      committer,
      healthy,
      maxAttempts: options.maxAttempts ?? 3,
      metrics,
      logger,
      signal: lost,
    };
    // Batches and quarantine retries take turns: both write the consumer's state.
    const serially = queue();
    metrics.leader.set(1);
    options.onStart?.();
    const retries = serveRetryRequests(options, committer, serially, logger, lost);
    const batchSize = options.batchSize ?? 500;
    try {
      for (let failures = 1; !lost.aborted; failures++) {
        reading = new AbortController();
        try {
          await committer.drain();
          await ensureCheckpoint(pool, name);
          const from = (await readCheckpoint(pool, name)) ?? START_POSITION;
          metrics.setPosition(from);
          logger.info({ from }, 'consuming the log');
          for await (const batch of store.subscribeToAll({
            fromPosition: from,
            batchSize,
            signal: AbortSignal.any([lost, reading.signal]),
            ...(options.filter ? { filter: options.filter } : {}),
          })) {
            if (batch.length === 0 || reading.signal.aborted) continue;
            await serially(() => commitOrIsolate(batch, isolation));
            failures = 0;
            await lingerAfter(batch.length, batchSize, options.lingerMs ?? 0, lost);
          }
        } catch (err) {
          if (lost.aborted) break;
          logger.warn({ err }, 'reading the log failed; resuming from the checkpoint');
        }
        // A subscription that ended or failed without the signal: resume after a pause.
        await sleep(retryDelayMs(RETRY.dependency, failures), lost);
      }
    } finally {
      await retries;
      await committer.drain().catch(() => {});
      metrics.leader.set(0);
    }
  };

  await runAsLeader({
    pool,
    lockName: options.lockName ?? name,
    logger,
    signal,
    ...(options.leaderRetryMs === undefined ? {} : { retryMs: options.leaderRetryMs }),
    run: lead,
  });
};

/** Runs tasks one after another, in the order they were queued. */
const queue = () => {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(task: () => Promise<T>): Promise<T> => {
    const run = tail.then(task);
    tail = run.catch(() => {});
    return run;
  };
};

/**
 * `chatctl quarantine retry` marks quarantined events; the leader applies each again between batches.
 * Applied, it leaves the quarantine (in the transaction of its effects, for in-transaction consumers);
 * failing, it stays with the new error. A dependency failing meanwhile leaves the request for later.
 */
const serveRetryRequests = async <R>(
  options: ConsumerOptions<R>,
  committer: Committer,
  serially: ReturnType<typeof queue>,
  logger: Logger,
  signal: AbortSignal,
): Promise<void> => {
  const { pool, store, name } = options;
  const retry = async (row: QuarantinedEvent): Promise<void> => {
    const [event] = await store.readStream(row.streamId, { fromRevision: row.revision, maxCount: 1 });
    if (!event || event.id.toLowerCase() !== row.eventId.toLowerCase()) {
      await retryFailed(pool, name, row.eventId, 'the event is no longer in the log (expired stream)');
      return;
    }
    try {
      await committer.reapply(event);
      logger.info({ eventId: event.id, position: event.position }, 'quarantined event applied on retry');
    } catch (err) {
      if (isTransient(err)) throw err;
      await retryFailed(pool, name, row.eventId, describeError(err));
      logger.warn({ err, eventId: event.id }, 'quarantined event failed again on retry; it stays');
    }
  };
  while (!signal.aborted) {
    await sleep(options.retryPollMs ?? 1000, signal);
    if (signal.aborted) break;
    try {
      for (const row of await retryRequests(pool, name)) {
        if (signal.aborted) break;
        await serially(() => retry(row));
      }
    } catch (err) {
      logger.warn({ err }, 'serving quarantine retries failed; trying again later');
    }
  }
};
