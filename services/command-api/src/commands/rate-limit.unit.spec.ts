import { describe, expect, it } from 'vitest';
import { CommandRateLimiter } from './rate-limit.js';

describe('CommandRateLimiter', () => {
  it('allows a burst, then refills at the rate, per user', () => {
    let now = 1_000_000;
    const limiter = new CommandRateLimiter(2, 3, () => now);
    expect([limiter.take('a'), limiter.take('a'), limiter.take('a')]).toEqual([0, 0, 0]);
    expect(limiter.take('a')).toBe(1);
    expect(limiter.take('b')).toBe(0);
    now += 500;
    expect(limiter.take('a')).toBe(0);
    expect(limiter.take('a')).toBeGreaterThanOrEqual(1);
  });

  it('is off with rate 0', () => {
    const limiter = new CommandRateLimiter(0, 1);
    for (let i = 0; i < 10; i++) expect(limiter.take('a')).toBe(0);
  });
});
