import { randomUUID } from 'node:crypto';
import { DEV_JWT_SECRET } from '@chat/platform';
import { jwksTokenCases, signToken, startJwksServer, TEST_JWT_SECRET, unsignedToken } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
let id: string;
let messageId: string;
beforeAll(async () => {
  h = await startHarness('access');
  id = await h.createGroup('alice', ['bob']);
  messageId = (await h.send('alice', id, 'secret')).body.messageId;
});
afterAll(() => h?.close());

const routes = () =>
  [
    ['POST', `/v1/conversations/${id}/members`, { userId: 'mallory' }],
    ['DELETE', `/v1/conversations/${id}/members/bob`, undefined],
    ['DELETE', `/v1/conversations/${id}/members/mallory`, undefined],
    ['POST', `/v1/conversations/${id}/messages`, { messageId: randomUUID(), body: 'hi' }],
    ['POST', `/v1/conversations/${id}/messages`, { messageId, body: 'secret' }],
    ['PATCH', `/v1/conversations/${id}/messages/${messageId}`, { body: 'x' }],
    ['DELETE', `/v1/conversations/${id}/messages/${messageId}`, undefined],
    ['POST', `/v1/conversations/${id}/read`, { upToSeq: 0 }],
    ['POST', `/v1/conversations/${id}/typing`, {}],
    ['PUT', `/v1/conversations/${id}/mute`, { until: null }],
  ] as const;

describe('a non-member', () => {
  it('gets 404 on every conversation-scoped command route, and nothing is appended', async () => {
    const before = await h.logSize();
    for (const [method, url, body] of routes()) {
      for (const user of ['mallory', 'admin-user']) {
        const res = await h.call(user, method, url, body);
        expect(res.status, `${user} ${method} ${url}`).toBe(404);
        expect(res.body).toEqual({ error: { code: 'not_found', message: 'conversation not found' } });
      }
    }
    expect(await h.logSize()).toBe(before);
  });

  it('gets the same 404 for a conversation that does not exist', async () => {
    const before = await h.logSize();
    const nowhere = randomUUID();
    for (const [method, url, body] of routes()) {
      const res = await h.call('mallory', method, url.replace(id, nowhere), body);
      expect(res.status, `${method} ${url}`).toBe(404);
      expect(res.body).toEqual({ error: { code: 'not_found', message: 'conversation not found' } });
    }
    expect(await h.logSize()).toBe(before);
  });

  it('admins are not members either', async () => {
    const admin = await signToken('root', { roles: ['admin'] });
    const res = await h.app.inject({
      method: 'POST',
      url: `/v1/conversations/${id}/read`,
      headers: { authorization: `Bearer ${admin}` },
      payload: { upToSeq: 0 },
    });
    expect(res.statusCode).toBe(404);
  });
});

describe('authentication', () => {
  const attempt = (authorization?: string) =>
    h.app.inject({
      method: 'POST',
      url: `/v1/conversations/${id}/messages`,
      headers: authorization ? { authorization } : {},
      payload: { messageId: randomUUID(), body: 'hi' },
    });

  it('answers 401 to missing, malformed, expired, alg:none, wrong-secret and foreign-sub tokens; nothing appended', async () => {
    const before = await h.logSize();
    const tokens = [
      undefined,
      'Bearer',
      'Basic abc',
      'Bearer not.a.jwt',
      `Bearer ${await signToken('alice', { expiresIn: -10 })}`,
      `Bearer ${unsignedToken('alice')}`,
      `Bearer ${await signToken('alice', { secret: `${TEST_JWT_SECRET}-other` })}`,
      `Bearer ${await signToken('bad user id with spaces')}`,
    ];
    for (const authorization of tokens) {
      const res = await attempt(authorization);
      expect(res.statusCode, authorization).toBe(401);
      expect(res.json()).toEqual({ error: { code: 'unauthorized', message: expect.any(String) } });
    }
    expect(await h.logSize()).toBe(before);
    expect((await attempt(`Bearer ${await h.tokenFor('alice')}`)).statusCode).toBe(201);
  });

  it('checks iss and aud when configured', async () => {
    const app = await h.variant({ JWT_ISSUER: 'https://issuer.test', JWT_AUDIENCE: 'chat' });
    try {
      const call = async (token: string) =>
        (
          await app.inject({
            method: 'POST',
            url: `/v1/conversations/${id}/typing`,
            headers: { authorization: `Bearer ${token}` },
            payload: {},
          })
        ).statusCode;
      expect(await call(await signToken('alice'))).toBe(401);
      expect(await call(await signToken('alice', { issuer: 'https://other.test', audience: 'chat' }))).toBe(
        401,
      );
      expect(await call(await signToken('alice', { issuer: 'https://issuer.test', audience: 'chat' }))).toBe(
        202,
      );
    } finally {
      await app.close();
    }
  });
});

describe('JWKS mode', () => {
  it('accepts only asymmetric tokens from the JWKS: HS256 (even with the development secret), alg:none, forged, wrong iss/aud and expired beyond the 5 s leeway are 401', async () => {
    const idp = await startJwksServer();
    const issuer = 'https://idp.test';
    const audience = 'chat';
    // JWT_SECRET left at its default, as an operator who only set JWKS_URL would.
    const app = await h.variant({
      JWKS_URL: idp.url,
      JWT_ISSUER: issuer,
      JWT_AUDIENCE: audience,
      JWT_SECRET: DEV_JWT_SECRET,
    });
    try {
      const call = async (token: string) =>
        (
          await app.inject({
            method: 'POST',
            url: `/v1/conversations/${id}/typing`,
            headers: { authorization: `Bearer ${token}` },
          })
        ).statusCode;
      const cases = await jwksTokenCases(idp, 'alice', { issuer, audience }, DEV_JWT_SECRET);
      for (const [what, token] of Object.entries(cases.refused)) expect(await call(token), what).toBe(401);
      for (const [what, token] of Object.entries(cases.accepted)) expect(await call(token), what).toBe(202);
    } finally {
      await app.close();
      await idp.close();
    }
  });
});
