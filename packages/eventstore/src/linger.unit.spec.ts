import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { lingerAfter } from './linger.js';

const HOUR = 3_600_000;

/** 'returned' when `lingerAfter` resolves before `ms`, else 'waiting'. */
const within = (linger: Promise<void>, ms: number) =>
  Promise.race([linger.then(() => 'returned' as const), sleep(ms).then(() => 'waiting' as const)]);

describe('lingerAfter', () => {
  it('returns at once after a full batch (catching up), with linger off, or once aborted', async () => {
    const signal = new AbortController().signal;
    // An hour's linger that is skipped: anything but an immediate return shows as 'waiting'.
    expect(await within(lingerAfter(500, 500, HOUR, signal), 200)).toBe('returned');
    expect(await within(lingerAfter(501, 500, HOUR, signal), 200)).toBe('returned');
    expect(await within(lingerAfter(3, 500, 0, signal), 200)).toBe('returned');
    expect(await within(lingerAfter(3, 500, HOUR, AbortSignal.abort()), 200)).toBe('returned');
  });

  it('waits after a partial batch, and an abort ends the wait', async () => {
    const controller = new AbortController();
    let done = false;
    const waiting = lingerAfter(3, 500, HOUR, controller.signal).then(() => {
      done = true;
    });
    await sleep(20);
    expect(done).toBe(false);
    controller.abort();
    await waiting;
    expect(done).toBe(true);
  });

  it('waits `ms` after a partial batch', async () => {
    const signal = new AbortController().signal;
    expect(await within(lingerAfter(3, 500, 300, signal), 100)).toBe('waiting');
    expect(await within(lingerAfter(3, 500, 50, signal), 5_000)).toBe('returned');
  });
});
