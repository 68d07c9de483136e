/**
 * Exponential backoff with full jitter: the delay is uniform in [0, min(max, base·2^attempt)].
 * After a gateway dies, thousands of clients reconnect at once; full jitter spreads them over the
 * whole window instead of in synchronised waves (AWS architecture blog, "Exponential Backoff And
 * Jitter").
 */
export const backoffDelay = (
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number => Math.floor(random() * Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30)));
