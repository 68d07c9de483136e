import { describe, expect, it } from 'vitest';
import { type FloodState, floodCheck } from './flood.js';

const fresh = (now: number): FloodState => ({ tokens: 40, refillAt: now, floodSince: 0, lastReject: 0 });

describe('floodCheck', () => {
  it('accepts a burst of 40, then 20 per second', () => {
    const s = fresh(0);
    const verdicts = Array.from({ length: 45 }, () => floodCheck(s, 0, 20, 40));
    expect(verdicts.filter((v) => v === 'accept')).toHaveLength(40);
    expect(verdicts.slice(40)).toEqual(['reject', 'reject', 'reject', 'reject', 'reject']);
    expect(floodCheck(s, 50, 20, 40)).toBe('accept'); // 50 ms refill one token
    expect(floodCheck(s, 50, 20, 40)).toBe('reject');
  });

  it('closes a client still flooding after 10 s of rejections, not one that paused', () => {
    const s = fresh(0);
    const first: string[] = [];
    for (let t = 0; t <= 12_000; t += 5) first.push(floodCheck(s, t, 20, 40));
    expect(first.indexOf('close') * 5).toBeGreaterThanOrEqual(10_000);

    const calm = fresh(0);
    for (let t = 0; t < 6000; t += 5) floodCheck(calm, t, 20, 40);
    // A quiet stretch over a second ends the flood episode.
    const second: string[] = [];
    for (let t = 8000; t < 13_000; t += 5) second.push(floodCheck(calm, t, 20, 40));
    expect(second).toContain('reject');
    expect(second).not.toContain('close');
  });
});
