import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadNotifierConfig } from './config.js';
import { webhookOptions } from './delivery.js';

const URL = 'https://hooks.example.com/chat';
const STANDARD = `whsec_${randomBytes(32).toString('base64')}`;

describe('webhook configuration', () => {
  it('retries for many hours by default before dead-lettering, not minutes', () => {
    const options = webhookOptions(loadNotifierConfig({ WEBHOOK_URL: URL, WEBHOOK_SECRET: STANDARD }));
    const retry = options?.retry;
    if (!retry) throw new Error('no webhook options');
    // Full jitter waits half the ceiling on average: the expected time from the first attempt to the
    // dead letter is half the sum of the ceilings of every retry.
    let ceilings = 0;
    for (let failed = 1; failed < retry.maxAttempts; failed++) {
      ceilings += Math.min(retry.maxMs, retry.baseMs * 2 ** (failed - 1));
    }
    const expectedHours = ceilings / 2 / 3_600_000;
    expect(expectedHours).toBeGreaterThan(20);
    expect(expectedHours).toBeLessThan(30);
  });

  it('builds the one retry policy from the environment', () => {
    const options = webhookOptions(
      loadNotifierConfig({
        WEBHOOK_URL: URL,
        WEBHOOK_SECRET: STANDARD,
        WEBHOOK_MAX_ATTEMPTS: '3',
        WEBHOOK_BACKOFF_MS: '10',
        WEBHOOK_BACKOFF_MAX_MS: '40',
      }),
    );
    expect(options?.retry).toEqual({ name: 'webhook', baseMs: 10, maxMs: 40, maxAttempts: 3 });
    expect(webhookOptions(loadNotifierConfig({}))).toBeUndefined();
  });

  it('takes a comma list of secrets, one signing key each', () => {
    const options = webhookOptions(
      loadNotifierConfig({ WEBHOOK_URL: URL, WEBHOOK_SECRET: ` ${STANDARD} , old-secret-0123456789 ` }),
    );
    expect(options?.keys).toEqual([
      Buffer.from(STANDARD.slice('whsec_'.length), 'base64'),
      Buffer.from('old-secret-0123456789'),
    ]);
  });

  it('refuses a missing or weak secret with the variable named and the secret not repeated', () => {
    expect(() => loadNotifierConfig({ WEBHOOK_URL: URL })).toThrow(
      /WEBHOOK_SECRET: required when WEBHOOK_URL/,
    );
    const weak = () => loadNotifierConfig({ WEBHOOK_URL: URL, WEBHOOK_SECRET: `${STANDARD},tooshort` });
    expect(weak).toThrow(/WEBHOOK_SECRET: entry 2 is shorter than 16 characters/);
    expect(weak).not.toThrow(/tooshort/);
    expect(() =>
      loadNotifierConfig({ WEBHOOK_URL: URL, WEBHOOK_SECRET: STANDARD, WEBHOOK_BACKOFF_MAX_MS: '10' }),
    ).toThrow(/WEBHOOK_BACKOFF_MAX_MS: must be at least WEBHOOK_BACKOFF_MS/);
  });
});
