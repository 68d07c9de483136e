import { createLogger } from '@chat/platform';
import { describe, expect, it } from 'vitest';
import { MemoryReducer } from './reducer.js';

const logger = createLogger('ws-gateway', 'silent');
const reducer = (minConnects = 100) => {
  const runs: number[] = [];
  let now = 0;
  const r = new MemoryReducer(
    {
      minConnects,
      quietMs: 1000,
      minIntervalMs: 1000,
      collect: async () => {
        runs.push(now);
      },
    },
    logger,
  );
  /** `count` connects, one per `everyMs`, ticking every 100 ms as the gateway's sweep does. */
  const connects = async (count: number, everyMs = 1) => {
    for (let i = 0; i < count; i++) {
      now += everyMs;
      r.noteConnect(now);
      if (now % 100 === 0) {
        r.tick(now);
        await Promise.resolve();
      }
    }
  };
  const idle = async (ms: number) => {
    for (let t = 0; t < ms; t += 100) {
      now += 100;
      r.tick(now);
      await Promise.resolve();
    }
  };
  return { runs, connects, idle, at: () => now };
};

describe('MemoryReducer', () => {
  it('collects once when a burst is over, not while it lasts', async () => {
    const r = reducer();
    await r.connects(300);
    expect(r.runs).toEqual([]);
    await r.idle(900);
    expect(r.runs).toEqual([]);
    await r.idle(5000);
    expect(r.runs).toHaveLength(1);
    expect(r.runs[0]).toBeGreaterThanOrEqual(1300);
  });

  it('ignores a trickle of connects below the threshold', async () => {
    const r = reducer();
    for (let i = 0; i < 5; i++) {
      await r.connects(10);
      await r.idle(3000);
    }
    await r.connects(49);
    await r.idle(3000);
    expect(r.runs).toEqual([]);
    await r.connects(1);
    await r.idle(3000);
    expect(r.runs).toHaveLength(1);
  });

  it('also collects during a long burst, every four thresholds, at most once a second', async () => {
    const r = reducer();
    await r.connects(2000, 2);
    expect(r.runs.length).toBe(4);
    for (const [i, at] of r.runs.slice(1).entries()) expect(at - r.runs[i]!).toBeGreaterThanOrEqual(800);
  });

  it('does nothing when disabled', async () => {
    const r = reducer(0);
    await r.connects(5000);
    await r.idle(5000);
    expect(r.runs).toEqual([]);
  });
});
