import { describe, expect, it } from 'vitest';
import { FLOOD_CLOSE_AFTER_MS, type FloodLimits, type FloodState, floodCheck } from './flood.js';

const limits: FloodLimits = {
  ratePerSecond: 20,
  burst: 40,
  pingRatePerSecond: 10,
  pingBurst: 20,
  closeAfterMs: FLOOD_CLOSE_AFTER_MS,
};
const fresh = (now: number): FloodState => ({
  tokens: limits.burst * 1000,
  refillAt: now,
  pingTokens: limits.pingBurst * 1000,
  pingRefillAt: now,
  floodSince: 0,
  lastReject: 0,
});

describe('floodCheck', () => {
  it('accepts a burst of 40 commands, then 20 per second', () => {
    const s = fresh(0);
    const verdicts = Array.from({ length: 45 }, () => floodCheck(s, 'command', 0, limits));
    expect(verdicts.filter((v) => v === 'accept')).toHaveLength(40);
    expect(verdicts.slice(40)).toEqual(['reject', 'reject', 'reject', 'reject', 'reject']);
    expect(floodCheck(s, 'command', 50, limits)).toBe('accept'); // 50 ms refill one token
    expect(floodCheck(s, 'command', 50, limits)).toBe('reject');
  });

  it('keeps pings in their own bucket: they never cost a command, and a ping flood is bounded', () => {
    const s = fresh(0);
    const pings = Array.from({ length: 25 }, () => floodCheck(s, 'ping', 0, limits));
    expect(pings.filter((v) => v === 'accept')).toHaveLength(20);
    expect(pings.slice(20)).toEqual(['reject', 'reject', 'reject', 'reject', 'reject']);
    // The command bucket is untouched by the pings.
    const commands = Array.from({ length: 40 }, () => floodCheck(s, 'command', 0, limits));
    expect(commands.every((v) => v === 'accept')).toBe(true);
    expect(floodCheck(s, 'ping', 100, limits)).toBe('accept'); // 100 ms refill one ping
  });

  it('keeps its state in integers', () => {
    const s = fresh(0);
    for (let t = 0; t < 3000; t += 7)
      floodCheck(s, t % 2 ? 'ping' : 'command', t, { ...limits, ratePerSecond: 0.3 });
    expect(Object.values(s).every(Number.isInteger)).toBe(true);
  });

  it('closes a client still flooding after 10 s of rejections, not one that paused', () => {
    const s = fresh(0);
    const first: string[] = [];
    for (let t = 0; t <= 12_000; t += 5) first.push(floodCheck(s, 'command', t, limits));
    expect(first.indexOf('close') * 5).toBeGreaterThanOrEqual(10_000);

    const calm = fresh(0);
    for (let t = 0; t < 6000; t += 5) floodCheck(calm, 'command', t, limits);
    // A quiet stretch over a second ends the flood episode.
    const second: string[] = [];
    for (let t = 8000; t < 13_000; t += 5) second.push(floodCheck(calm, 'command', t, limits));
    expect(second).toContain('reject');
    expect(second).not.toContain('close');
  });

  it('closes a ping flooder after 10 s as well', () => {
    const s = fresh(0);
    const verdicts: string[] = [];
    for (let t = 0; t <= 12_000; t += 5) verdicts.push(floodCheck(s, 'ping', t, limits));
    expect(verdicts.indexOf('close') * 5).toBeGreaterThanOrEqual(10_000);
  });
});
