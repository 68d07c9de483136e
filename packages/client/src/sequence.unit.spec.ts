import { describe, expect, it } from 'vitest';
import { backoffDelay } from './backoff.js';
import { SeqTracker } from './sequence.js';

describe('SeqTracker', () => {
  it('delivers in order, drops duplicates and reports gaps', () => {
    const t = new SeqTracker({ A: 2 });
    expect(t.check('a', 2)).toBe('duplicate');
    expect(t.check('a', 4)).toBe('gap');
    expect(t.check('a', 3)).toBe('deliver');
    t.record('a', 3);
    expect(t.positions()).toEqual({ a: 3 });
    expect(t.check('b', 17)).toBe('deliver');
    t.forget('a');
    expect(t.check('a', 90)).toBe('deliver');
  });
});

describe('backoffDelay', () => {
  it('is full jitter under an exponential cap', () => {
    expect(backoffDelay(0, 250, 10_000, () => 0.999)).toBe(249);
    expect(backoffDelay(3, 250, 10_000, () => 0.5)).toBe(1000);
    expect(backoffDelay(20, 250, 10_000, () => 0.999)).toBe(9990);
    expect(backoffDelay(5, 250, 10_000, () => 0)).toBe(0);
  });
});
