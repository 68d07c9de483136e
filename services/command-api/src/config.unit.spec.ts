import { describe, expect, it } from 'vitest';
import { readConfig } from './config.js';

describe('readConfig in production', () => {
  const strong = 'x'.repeat(32);

  it('refuses a missing ALLOWED_ORIGINS (the key absent from the env) and the development secret', () => {
    expect(() => readConfig({ NODE_ENV: 'production', JWT_SECRET: strong })).toThrow(/ALLOWED_ORIGINS/);
    expect(() => readConfig({ NODE_ENV: 'production', ALLOWED_ORIGINS: 'https://app.example' })).toThrow(
      /JWT_SECRET/,
    );
    expect(
      readConfig({ NODE_ENV: 'production', JWT_SECRET: strong, ALLOWED_ORIGINS: 'https://app.example' })
        .NODE_ENV,
    ).toBe('production');
  });
});
