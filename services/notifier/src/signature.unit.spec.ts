import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { secretProblem, signingKey, signWebhook } from './signature.js';

const STANDARD = `whsec_${randomBytes(32).toString('base64')}`;
const PLAIN = 'a-plain-secret-of-some-length';
const ID = '6f1c2b9e-3d4a-5b6c-8d7e-9f0a1b2c3d4e';
const BODY = '{"type":"notification","recipientId":"bob","preview":"héllo ✓"}';

describe('signWebhook', () => {
  it('signs what the Standard Webhooks reference library signs, for whsec_ and plain secrets', () => {
    const at = new Date(1_795_700_000_000);
    expect(signWebhook([signingKey(STANDARD)], ID, 1_795_700_000, BODY)).toBe(
      new Webhook(STANDARD).sign(ID, at, BODY),
    );
    expect(signWebhook([signingKey(PLAIN)], ID, 1_795_700_000, BODY)).toBe(
      new Webhook(Buffer.from(PLAIN), { format: 'raw' }).sign(ID, at, BODY),
    );
  });

  it('carries one signature per key, so a receiver with either secret verifies during a rotation', () => {
    const keys = [STANDARD, PLAIN].map(signingKey);
    const header = signWebhook(keys, ID, Math.floor(Date.now() / 1000), BODY);
    expect(header).toMatch(/^v1,[A-Za-z0-9+/]{43}= v1,[A-Za-z0-9+/]{43}=$/);
    const headers = {
      'webhook-id': ID,
      'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
      'webhook-signature': header,
    };
    expect(new Webhook(STANDARD).verify(BODY, headers)).toMatchObject({ recipientId: 'bob' });
    expect(new Webhook(Buffer.from(PLAIN), { format: 'raw' }).verify(BODY, headers)).toMatchObject({
      recipientId: 'bob',
    });
  });
});

describe('secretProblem', () => {
  it('accepts whsec_ secrets of 24–64 bytes and plain secrets of 16 characters or more', () => {
    expect(secretProblem(STANDARD)).toBeUndefined();
    expect(secretProblem(`whsec_${randomBytes(24).toString('base64')}`)).toBeUndefined();
    expect(secretProblem(`whsec_${randomBytes(64).toString('base64')}`)).toBeUndefined();
    expect(secretProblem('0123456789abcdef')).toBeUndefined();
  });

  it('names what is wrong, without repeating the secret', () => {
    expect(secretProblem(`whsec_${randomBytes(16).toString('base64')}`)).toBe(
      'decodes to 16 bytes (24 to 64 needed)',
    );
    expect(secretProblem(`whsec_${randomBytes(65).toString('base64')}`)).toBe(
      'decodes to 65 bytes (24 to 64 needed)',
    );
    expect(secretProblem('whsec_not base64!')).toBe('contains whitespace or a comma');
    expect(secretProblem('whsec_not-base64-at-all')).toBe('is not whsec_ followed by base64');
    expect(secretProblem('short')).toBe('is shorter than 16 characters');
  });
});
