/**
 * Delay before the next webhook attempt: exponential backoff with "full jitter" (a uniform draw
 * between 0 and the capped exponential). Full jitter spreads the retries of many notifications that
 * failed together, so a receiver coming back is not hit by a synchronized wave.
 */
export const retryDelayMs = (
  failedAttempts: number,
  options: { baseMs: number; maxMs: number },
  random: () => number,
): number => {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 30);
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** exponent);
  return Math.floor(random() * ceiling);
};
