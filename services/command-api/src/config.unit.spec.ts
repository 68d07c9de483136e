import { describe, expect, it } from 'vitest';
import { readConfig } from './config.js';

describe('readConfig in production', () => {
  const strong = 'x'.repeat(32);

  it('refuses a missing ALLOWED_ORIGINS (the key absent from the env) and the development secret', () => {
    expect(() => readConfig({ NODE_ENV: 'production', JWT_SECRET: strong })).toThrow(/ALLOWED_ORIGINS/);
    expect(() => readConfig({ NODE_ENV: 'production', ALLOWED_ORIGINS: 'https://app.example' })).toThrow(
      /JWT_SECRET/,
    );
    const production = { NODE_ENV: 'production', JWT_SECRET: strong, ALLOWED_ORIGINS: 'https://app.example' };
    // The data keys' master key: refused unset (the development default), taken as 32 bytes of base64.
    expect(() => readConfig(production)).toThrow(/DATA_KEY_MASTER: the development master key is refused/);
    expect(
      readConfig({ ...production, DATA_KEY_MASTER: Buffer.alloc(32, 7).toString('base64') }).NODE_ENV,
    ).toBe('production');
  });
});
