import { describe, expect, it } from 'vitest';
import { retryDelayMs } from './backoff.js';

describe('retryDelayMs', () => {
  const options = { baseMs: 100, maxMs: 1000 };
  it('doubles the ceiling per failure up to the cap, drawing uniformly below it', () => {
    expect([1, 2, 3, 4, 5, 10].map((n) => retryDelayMs(n, options, () => 0.999999))).toEqual([
      99, 199, 399, 799, 999, 999,
    ]);
    expect(retryDelayMs(3, options, () => 0)).toBe(0);
  });
});
