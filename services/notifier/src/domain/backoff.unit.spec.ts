import { describe, expect, it } from 'vitest';
import { retryDelayMs } from './backoff.js';
import { decodeCursor, encodeCursor } from './cursor.js';

describe('retryDelayMs', () => {
  const options = { baseMs: 100, maxMs: 1000 };
  it('doubles the ceiling per failure up to the cap, drawing uniformly below it', () => {
    expect([1, 2, 3, 4, 5, 10].map((n) => retryDelayMs(n, options, () => 0.999999))).toEqual([
      99, 199, 399, 799, 999, 999,
    ]);
    expect(retryDelayMs(3, options, () => 0)).toBe(0);
  });
});

describe('cursor', () => {
  it('round-trips and refuses what it did not make', () => {
    const c = {
      createdAt: '2026-01-01T10:00:00.000Z',
      notificationId: '6a2b1c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
    };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
    expect(decodeCursor('nonsense')).toBeNull();
    expect(decodeCursor(Buffer.from('["x","y"]').toString('base64url'))).toBeNull();
  });
});
