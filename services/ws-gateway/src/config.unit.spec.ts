import { describe, expect, it } from 'vitest';
import { loadGatewayConfig } from './config.js';

describe('loadGatewayConfig in production', () => {
  const strong = 'x'.repeat(32);

  it('refuses a missing ALLOWED_ORIGINS (the key absent from the env) and the development secret', () => {
    expect(() => loadGatewayConfig({ NODE_ENV: 'production', JWT_SECRET: strong })).toThrow(
      /ALLOWED_ORIGINS/,
    );
    expect(() =>
      loadGatewayConfig({ NODE_ENV: 'production', ALLOWED_ORIGINS: 'https://app.example' }),
    ).toThrow(/JWT_SECRET/);
    const production = { NODE_ENV: 'production', JWT_SECRET: strong, ALLOWED_ORIGINS: 'https://app.example' };
    expect(() => loadGatewayConfig(production)).toThrow(/DATA_KEY_MASTER/);
    expect(loadGatewayConfig({ ...production, DATA_KEY_MASTER: 'ab'.repeat(32) }).NODE_ENV).toBe(
      'production',
    );
  });
});
