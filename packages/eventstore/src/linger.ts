import { setTimeout as delay } from 'node:timers/promises';

/**
 * For subscribers whose cost is per batch (a transaction, a checkpoint write, queries per batch): after
 * a batch smaller than `batchSize` — the subscriber is live, not catching up — wait `ms` before taking
 * the next one, so it gathers whatever arrives meanwhile (Kafka's `linger.ms`). Fewer, larger
 * transactions under load, for at most `ms` of added lag. Returns at once when `signal` aborts.
 */
export const lingerAfter = async (
  batchLength: number,
  batchSize: number,
  ms: number,
  signal: AbortSignal,
): Promise<void> => {
  if (ms <= 0 || batchLength >= batchSize || signal.aborted) return;
  await delay(ms, undefined, { signal }).catch(() => undefined);
};
