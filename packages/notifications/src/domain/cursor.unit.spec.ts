import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './cursor.js';

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
