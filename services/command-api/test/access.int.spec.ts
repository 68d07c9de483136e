import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { signToken, TEST_JWT_SECRET, unsignedToken } from '@chat/testkit';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
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
    const res = await h.call('mallory', 'POST', `/v1/conversations/${randomUUID()}/read`, { upToSeq: 0 });
    expect(res.body).toEqual({ error: { code: 'not_found', message: 'conversation not found' } });
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

describe('JWKS', () => {
  it('accepts ES256 tokens signed by a key of JWKS_URL, alongside HS256', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const app = await h.variant({ JWKS_URL: `http://127.0.0.1:${port}/jwks.json` });
    try {
      const now = Math.floor(Date.now() / 1000);
      const es256 = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject('alice')
        .setExpirationTime(now + 60)
        .sign(privateKey);
      const call = async (token: string) =>
        (
          await app.inject({
            method: 'POST',
            url: `/v1/conversations/${id}/typing`,
            headers: { authorization: `Bearer ${token}` },
          })
        ).statusCode;
      expect(await call(es256)).toBe(202);
      expect(await call(await signToken('bob'))).toBe(202);
      const { privateKey: otherKey } = await generateKeyPair('ES256');
      const forged = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setSubject('alice')
        .setExpirationTime(now + 60)
        .sign(otherKey);
      expect(await call(forged)).toBe(401);
    } finally {
      await app.close();
      server.close();
    }
  });
});

describe('rate limit', () => {
  it('answers 429 with Retry-After once a user exceeds the rate, other users unaffected', async () => {
    const app = await h.variant({ COMMAND_RATE_PER_SEC: '1', COMMAND_RATE_BURST: '2' });
    try {
      const token = await h.tokenFor('bob');
      const send = (authorization: string) =>
        app.inject({
          method: 'POST',
          url: `/v1/conversations/${id}/typing`,
          headers: { authorization: `Bearer ${authorization}` },
          payload: {},
        });
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await send(token)).statusCode);
      expect(statuses).toEqual([202, 202, 429, 429]);
      const limited = await send(token);
      expect(limited.headers['retry-after']).toBe('1');
      expect(limited.json().error.code).toBe('rate_limited');
      expect((await send(await h.tokenFor('alice'))).statusCode).toBe(202);
    } finally {
      await app.close();
    }
  });
});
