import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrateReadModels } from '@chat/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

// What the command-api serves for the web client: the development token route and the static files.

let h: Harness;
let webRoot: string;

beforeAll(async () => {
  h = await startHarness('web');
  await migrateReadModels(h.pool);
  webRoot = mkdtempSync(join(tmpdir(), 'chat-web-'));
  mkdirSync(join(webRoot, 'assets'));
  writeFileSync(join(webRoot, 'index.html'), '<!doctype html><title>chat</title>');
  writeFileSync(join(webRoot, 'assets', 'index-abc123.js'), 'console.log(1)');
});

afterAll(async () => {
  await h?.close();
  rmSync(webRoot, { recursive: true, force: true });
});

const devToken = (app: Harness['app'], body: unknown, remoteAddress = '127.0.0.1') =>
  app.inject({ method: 'POST', url: '/v1/dev/token', payload: body as object, remoteAddress });

describe('POST /v1/dev/token (development only)', () => {
  it('signs a token for any user id that the API accepts', async () => {
    const res = await devToken(h.app, { userId: 'dev.user@example' });
    expect(res.statusCode).toBe(200);
    const { token, userId, expiresAt } = res.json();
    expect(userId).toBe('dev.user@example');
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(3500_000);
    const list = await h.app.inject({
      method: 'GET',
      url: '/v1/conversations',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(list.statusCode, list.body).toBe(200);
  });

  it('refuses a bad user id with validation_failed', async () => {
    for (const body of [{ userId: 'no spaces' }, { userId: '' }, {}, { userId: 'a', roles: ['admin'] }]) {
      const res = await devToken(h.app, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error.code).toBe('validation_failed');
    }
  });

  it('is documented in OpenAPI as development only', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const op = doc.paths['/v1/dev/token'].post;
    expect(op.operationId).toBe('devToken');
    expect(op.summary).toMatch(/^DEVELOPMENT ONLY/);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(['200', '400', '413', '429']));
  });

  it('does not exist in production, nor in JWKS mode', async () => {
    const production = await h.variant({
      NODE_ENV: 'production',
      ALLOWED_ORIGINS: 'https://chat.example',
      DATA_KEY_MASTER: Buffer.alloc(32, 1).toString('base64'),
    });
    const jwks = await h.variant({ JWKS_URL: 'http://127.0.0.1:9/.well-known/jwks.json' });
    try {
      for (const app of [production, jwks]) {
        const res = await devToken(app, { userId: 'mallory' });
        expect(res.statusCode).toBe(404);
        expect(res.json().error.code).toBe('not_found');
        const doc = (await app.inject({ method: 'GET', url: '/docs/json' })).json();
        expect(doc.paths['/v1/dev/token']).toBeUndefined();
      }
    } finally {
      await production.close();
      await jwks.close();
    }
  });

  it('is rate limited per client IP like every unauthenticated request', async () => {
    const app = await h.variant({ RATE_LIMIT_ANONYMOUS: '2', RATE_LIMIT_WINDOW_MS: '60000' });
    try {
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof devToken>> | undefined;
      for (let i = 0; i < 3; i++) {
        // An address of its own: the counters are shared with every other test of this database.
        last = await devToken(app, { userId: `u${i}` }, '127.0.0.99');
        statuses.push(last.statusCode);
      }
      expect(statuses).toEqual([200, 200, 429]);
      expect(last?.json().error.code).toBe('rate_limited');
      expect(Number(last?.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await app.close();
    }
  });
});

describe('the web client at / (WEB_ROOT)', () => {
  it('serves the page, its hashed assets and its config; everything else keeps the API 404', async () => {
    const app = await h.variant({ WEB_ROOT: webRoot, WEB_GATEWAY_URL: 'ws://{host}:4001/v1/ws' });
    try {
      const page = await app.inject({ method: 'GET', url: '/' });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('<title>chat</title>');
      expect(page.headers['cache-control']).toBe('no-cache');
      expect(page.headers['content-security-policy']).toContain("default-src 'self'");
      const asset = await app.inject({ method: 'GET', url: '/assets/index-abc123.js' });
      expect(asset.statusCode).toBe(200);
      expect(asset.headers['cache-control']).toContain('immutable');
      const config = await app.inject({
        method: 'GET',
        url: '/config.json',
        headers: { host: 'chat.local:3000' },
      });
      expect(config.json()).toEqual({ gatewayUrl: 'ws://chat.local:4001/v1/ws' });
      for (const url of ['/nope.html', '/assets/../../etc/passwd', '/v1/nope']) {
        const res = await app.inject({ method: 'GET', url });
        expect(res.statusCode, url).toBe(404);
        expect(res.json().error.code, url).toBe('not_found');
      }
      // The API beside it is unchanged.
      const list = await app.inject({ method: 'GET', url: '/v1/conversations' });
      expect(list.statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('refuses to start on a WEB_ROOT without a built page', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'chat-web-empty-'));
    try {
      await expect(h.variant({ WEB_ROOT: empty })).rejects.toThrow(/no index.html/);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
