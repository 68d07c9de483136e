import type { RecordedEvent } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import { RETRY, retryDelayMs, sleep, withRetry } from '@chat/retry';
import { type Committer, UnsettledEffectsError } from './commit.js';
import { describeError, isTransient, rejectedEvent } from './failures.js';
import type { ConsumerMetrics } from './metrics.js';

export type Isolation = {
  committer: Committer;
  /** True when every dependency answers (Postgres, the store, and the consumer's own). */
  healthy: () => Promise<boolean>;
  maxAttempts: number;
  metrics: ConsumerMetrics;
  logger: Logger;
  signal: AbortSignal;
};

/**
 * Commits a batch; when it fails, tells a dependency's failure from an event that cannot be applied.
 * - A dependency's failure (a transient error, or any error while a dependency does not answer) is
 *   waited out with `RETRY.dependency` and the same batch tried again: nothing is blamed, nothing lost.
 * - Otherwise the batch is split — around the event the consumer named, or in halves — and each part
 *   committed on its own, so every event that can be applied is, and the one that cannot is found.
 * Returns when every event of the batch is committed or quarantined, or when the signal aborts.
 */
export const commitOrIsolate = async (events: readonly RecordedEvent[], ctx: Isolation): Promise<void> => {
  for (let outages = 1; !ctx.signal.aborted; outages++) {
    try {
      await ctx.committer.commit(events);
      return;
    } catch (err) {
      if (ctx.signal.aborted) return;
      // Not this batch's fault: earlier effects may be lost, so the consumer resumes from its checkpoint.
      if (err instanceof UnsettledEffectsError) throw err;
      if (!(await blameable(err, ctx))) {
        await waitForDependency(err, outages, events, ctx);
        continue;
      }
      const [first] = events;
      if (events.length === 1 && first) return applyAlone(first, err, ctx);
      ctx.metrics.retries.inc({ reason: 'isolating' });
      ctx.logger.warn(
        { err, events: events.length, from: first?.position },
        'batch failed while its dependencies answer; applying it in parts to find the event',
      );
      for (const part of split(events, err)) {
        await commitOrIsolate(part, ctx);
        if (ctx.signal.aborted) return;
      }
      return;
    }
  }
};

/**
 * One event that fails on its own: tried again up to `maxAttempts` times in all, counting only the
 * failures while every dependency answers, then quarantined and stepped over.
 */
const applyAlone = async (event: RecordedEvent, firstError: unknown, ctx: Isolation): Promise<void> => {
  const firstFailedAt = new Date();
  let lastError = firstError;
  let attempts = 1;
  let outages = 0;
  while (attempts < ctx.maxAttempts) {
    await sleep(retryDelayMs(RETRY.dependency, attempts), ctx.signal);
    if (ctx.signal.aborted) return;
    try {
      await ctx.committer.commit([event]);
      return;
    } catch (err) {
      if (ctx.signal.aborted) return;
      if (err instanceof UnsettledEffectsError) throw err;
      if (await blameable(err, ctx)) {
        attempts++;
        lastError = err;
      } else await waitForDependency(err, ++outages, [event], ctx);
    }
  }
  const error = describeError(lastError);
  await withRetry(
    RETRY.dependency,
    () => ctx.committer.quarantine(event, { error, attempts, firstFailedAt }),
    {
      signal: ctx.signal,
      onRetry: (err) =>
        ctx.logger.warn({ err, eventId: event.id }, 'could not record the quarantine; retrying'),
    },
  ).catch((err: unknown) => {
    if (!ctx.signal.aborted) throw err;
  });
  if (ctx.signal.aborted) return;
  ctx.metrics.quarantined.inc();
  ctx.logger.error(
    {
      eventId: event.id,
      position: event.position,
      streamId: event.streamId,
      type: event.type,
      attempts,
      error,
    },
    'event quarantined: it fails alone while every dependency answers; the stream goes on after it',
  );
};

/** An error may be the event's fault only if it is not a known dependency failure and all dependencies answer. */
const blameable = async (err: unknown, ctx: Isolation): Promise<boolean> =>
  !isTransient(err) && (await ctx.healthy());

const waitForDependency = async (
  err: unknown,
  outages: number,
  events: readonly RecordedEvent[],
  ctx: Isolation,
): Promise<void> => {
  ctx.metrics.retries.inc({ reason: 'dependency' });
  const delay = retryDelayMs(RETRY.dependency, outages);
  ctx.logger.warn(
    { err, events: events.length, from: events[0]?.position, retryInMs: delay },
    'a dependency failed; retrying the batch',
  );
  await sleep(delay, ctx.signal);
};

/** Around the event the consumer named (when it is in the batch), else in halves. */
const split = (events: readonly RecordedEvent[], err: unknown): RecordedEvent[][] => {
  const named = rejectedEvent(err);
  const i = named ? events.findIndex((e) => e.id === named.id) : -1;
  const parts =
    i >= 0
      ? [events.slice(0, i), events.slice(i, i + 1), events.slice(i + 1)]
      : [events.slice(0, Math.ceil(events.length / 2)), events.slice(Math.ceil(events.length / 2))];
  return parts.filter((p) => p.length > 0);
};
