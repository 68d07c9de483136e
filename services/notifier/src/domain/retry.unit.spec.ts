import { retryPolicy } from '@chat/retry';
import { describe, expect, it } from 'vitest';
import { nextAttemptDelayMs, retryAfterMs } from './retry.js';

const policy = retryPolicy({ name: 'webhook', baseMs: 100, maxMs: 1000, maxAttempts: 5 });
const NOW = Date.parse('2026-11-26T12:00:00Z');

describe('retryAfterMs', () => {
  it('reads delay-seconds and HTTP dates, and ignores what it cannot read', () => {
    expect(retryAfterMs('120', NOW)).toBe(120_000);
    expect(retryAfterMs(' 0 ', NOW)).toBe(0);
    expect(retryAfterMs('Thu, 26 Nov 2026 12:00:30 GMT', NOW)).toBe(30_000);
    expect(retryAfterMs('Thu, 26 Nov 2026 11:00:00 GMT', NOW)).toBe(0);
    expect(retryAfterMs(null, NOW)).toBeUndefined();
    expect(retryAfterMs('soon', NOW)).toBeUndefined();
    expect(retryAfterMs('-5', NOW)).toBeUndefined();
  });
});

describe('nextAttemptDelayMs', () => {
  it('is the policy draw: full jitter below a ceiling that doubles up to maxMs', () => {
    expect([1, 2, 3, 4, 5, 9].map((n) => nextAttemptDelayMs(policy, n, undefined, () => 0.999999))).toEqual([
      99, 199, 399, 799, 999, 999,
    ]);
    expect(nextAttemptDelayMs(policy, 3, undefined, () => 0)).toBe(0);
  });

  it('waits at least what Retry-After asks, but never longer than maxMs', () => {
    expect(nextAttemptDelayMs(policy, 1, 500, () => 0)).toBe(500);
    expect(nextAttemptDelayMs(policy, 1, 10, () => 0.999999)).toBe(99);
    expect(nextAttemptDelayMs(policy, 1, 86_400_000, () => 0)).toBe(1000);
  });
});
