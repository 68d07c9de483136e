import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { lingerAfter } from './linger.js';

const HOUR = 3_600_000;

describe('lingerAfter', () => {
  it('returns at once after a full batch (catching up) or with linger off', async () => {
    const signal = new AbortController().signal;
    await lingerAfter(500, 500, HOUR, signal);
    await lingerAfter(3, 500, 0, signal);
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
});
