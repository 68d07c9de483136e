import { type RetryPolicy, retryDelayMs } from '@chat/retry';

/**
 * A `Retry-After` header (RFC 9110 §10.2.3) in milliseconds from `nowMs`: delay-seconds or an HTTP
 * date. Undefined when absent or unreadable, so a malformed header falls back to the policy alone.
 */
export const retryAfterMs = (value: string | null, nowMs: number): number | undefined => {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // An HTTP date names its weekday and month; without letters it is no date (Date.parse('-5') is one).
  const at = /[A-Za-z]/.test(text) ? Date.parse(text) : Number.NaN;
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
};

/**
 * Delay before the next attempt of a delivery: the webhook policy's full-jitter draw, but not sooner
 * than a receiver asked for with `Retry-After` (429, 503) — nor later than the policy's longest
 * delay, so a receiver can slow its deliveries down but never park them for days.
 */
export const nextAttemptDelayMs = (
  policy: RetryPolicy,
  failedAttempts: number,
  retryAfter: number | undefined,
  random: () => number = Math.random,
): number => Math.min(policy.maxMs, Math.max(retryDelayMs(policy, failedAttempts, random), retryAfter ?? 0));
