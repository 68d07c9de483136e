import {
  listQuarantine,
  type QuarantinedEvent,
  type RetryOutcome,
  requestRetry,
  retryOutcomes,
} from '@chat/consumer';
import { sleep } from '@chat/platform';
import type pg from 'pg';

export const listQuarantined = (pool: pg.Pool, consumer?: string): Promise<QuarantinedEvent[]> =>
  listQuarantine(pool, consumer);

export const formatQuarantine = (events: readonly QuarantinedEvent[]): string => {
  if (events.length === 0) return 'no quarantined events\n';
  const lines: string[] = [];
  for (const e of events) {
    lines.push(
      `${e.consumer.padEnd(12)} ${e.position}  ${e.eventId}  ${e.type} in ${e.streamId}@${e.revision}`,
      `  ${e.attempts} attempts, first ${e.firstFailedAt.toISOString()}, last ${e.lastFailedAt.toISOString()}${e.retryRequestedAt ? ', retry requested' : ''}`,
      ...e.error.split('\n').map((l) => `  ${l}`),
    );
  }
  return `${lines.join('\n')}\n`;
};

const POLL_MS = 100;

/**
 * Asks the consumer to apply these quarantined events again and waits up to `waitMs` for its answer.
 * An empty list means nothing matched.
 */
export const retryQuarantined = async (
  pool: pg.Pool,
  consumer: string,
  eventIds: readonly string[] | 'all',
  waitMs: number,
): Promise<RetryOutcome[]> => {
  const requests = await requestRetry(pool, consumer, eventIds);
  const ids = requests.map((r) => r.eventId);
  const deadline = Date.now() + waitMs;
  for (;;) {
    const outcomes = await retryOutcomes(pool, consumer, ids);
    if (outcomes.every((o) => o.outcome !== 'pending') || Date.now() >= deadline) return outcomes;
    await sleep(POLL_MS);
  }
};

export const formatRetry = (consumer: string, outcomes: readonly RetryOutcome[]): string =>
  outcomes
    .map((o) => {
      switch (o.outcome) {
        case 'applied':
          return `${o.eventId} applied by ${consumer}; it left the quarantine\n`;
        case 'failed':
          return `${o.eventId} failed again; it stays quarantined:\n  ${o.error.split('\n').join('\n  ')}\n`;
        case 'pending':
          return `${o.eventId} not retried yet (is ${consumer} running?); the request stays\n`;
        default: {
          const never: never = o;
          return never;
        }
      }
    })
    .join('');
