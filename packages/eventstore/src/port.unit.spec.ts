import { describe, expect, it } from 'vitest';
import { decodePosition, encodePosition, isValidPosition, START_POSITION } from './port.js';
import { validateAppend } from './validate.js';

const event = (id = '3f1c2b9e-8a4d-4c1e-9b7a-1d2e3f4a5b6c') => ({
  id,
  type: 'MessageSent',
  data: {},
  metadata: { userId: 'u', correlationId: 'c', causationId: null, schemaVersion: 1 },
});

describe('positions', () => {
  it('orders as strings the way the pairs order', () => {
    const pairs: [bigint, bigint][] = [
      [0n, 0n],
      [0n, 1n],
      [0n, 15n],
      [0n, 16n],
      [1n, 0n],
      [255n, 2n ** 40n],
      [2n ** 32n, 0n],
      [2n ** 64n - 1n, 2n ** 64n - 1n],
    ];
    const encoded = pairs.map(([a, b]) => encodePosition(a, b));
    expect([...encoded].sort()).toEqual(encoded);
    expect(encoded.map(decodePosition)).toEqual(pairs);
    expect(encoded.every(isValidPosition)).toBe(true);
    expect(encodePosition(0n, 0n)).toBe(START_POSITION);
  });

  it('rejects malformed positions', () => {
    expect(() => decodePosition('12')).toThrow();
    expect(() => decodePosition('G'.repeat(32))).toThrow();
    expect(isValidPosition('A'.repeat(32))).toBe(false);
  });
});

describe('validateAppend', () => {
  it('accepts well-formed appends', () => {
    expect(() => validateAppend('conversation-1', [event()], 'any')).not.toThrow();
    expect(() => validateAppend('conversation-1', [event()], 'no_stream')).not.toThrow();
    expect(() => validateAppend('conversation-1', [event()], -1)).not.toThrow();
    expect(() => validateAppend('conversation-1', [], 4)).not.toThrow();
  });

  it('rejects bad stream ids, revisions and event ids', () => {
    expect(() => validateAppend('', [event()], 'any')).toThrow(RangeError);
    expect(() => validateAppend('$system', [event()], 'any')).toThrow(RangeError);
    expect(() => validateAppend('s', [event()], -2)).toThrow(RangeError);
    expect(() => validateAppend('s', [event()], 1.5)).toThrow(RangeError);
    expect(() => validateAppend('s', [event('nope')], 'any')).toThrow(RangeError);
    expect(() => validateAppend('s', [event(), event()], 'any')).toThrow(/twice/);
    expect(() =>
      validateAppend('s', [event('3F1C2B9E-8A4D-4C1E-9B7A-1D2E3F4A5B6C'), event()], 'any'),
    ).toThrow(/twice/);
  });
});
