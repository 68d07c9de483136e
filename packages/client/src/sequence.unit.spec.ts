import { RESUME_MAX_CONVERSATIONS, WS_MAX_FRAME_BYTES } from '@chat/events';
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

describe('SeqTracker.resumePositions', () => {
  it('names at most RESUME_MAX_CONVERSATIONS conversations, the most recently active ones', () => {
    const t = new SeqTracker();
    for (let i = 0; i < RESUME_MAX_CONVERSATIONS + 44; i++) t.record(`c${i}`, i);
    t.record('c0', 1000); // active again
    const resume = t.resumePositions();
    expect(Object.keys(resume)).toHaveLength(RESUME_MAX_CONVERSATIONS);
    expect(resume.c0).toBe(1000);
    expect(resume.c1).toBeUndefined();
    expect(resume[`c${RESUME_MAX_CONVERSATIONS + 43}`]).toBe(RESUME_MAX_CONVERSATIONS + 43);
    // Every position is still known (and kept for storage); a frame of this size fits the limit.
    expect(Object.keys(t.positions())).toHaveLength(RESUME_MAX_CONVERSATIONS + 44);
    const frame = JSON.stringify({
      type: 'resume',
      ref: 'resume',
      positions: Object.fromEntries(
        Object.keys(resume).map((_, i) => [crypto.randomUUID(), 2 ** 31 - 1 - i]),
      ),
    });
    expect(Buffer.byteLength(frame)).toBeLessThanOrEqual(WS_MAX_FRAME_BYTES);
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
