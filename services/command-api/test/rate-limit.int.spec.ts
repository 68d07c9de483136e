import { setTimeout as sleep } from 'node:timers/promises';
import { migrateReadModels } from '@chat/db';
import { type CommandReply, natsSubjects } from '@chat/events';
import { migrateNotifier } from '@chat/notifications';
import { createLogger } from '@chat/platform';
import { signToken, testSubjectPrefix } from '@chat/testkit';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { PostgresRateLimitStore, RATE_LIMIT_FLUSH_INTERVAL_MS } from '../src/plugins/rate-limit-store.js';
import { type Harness, startHarness } from './harness.js';

// A long window keeps the test independent of timing: nothing refills while it runs.
const LIMITS = {
  RATE_LIMIT_WINDOW_MS: '60000',
  RATE_LIMIT_COMMANDS: '3',
  RATE_LIMIT_QUERIES: '3',
  RATE_LIMIT_ANONYMOUS: '3',
};

let h: Harness;
let conversationId: string;
let position: string;
beforeAll(async () => {
  h = await startHarness('ratelimit');
  await migrateNotifier(h.pool);
  await migrateReadModels(h.pool);
  conversationId = await h.createGroup('alice', ['frank', 'gina']);
  position = (await h.send('alice', conversationId)).body.position;
});
afterAll(() => h?.close());

/**
 * An app with the small limits above, on its own NATS prefix. Every app counts in the one store of the
 * test database, so each test uses users no other test (nor the setup) has counted against.
 */
const limitedApp = async () => {
  const prefix = testSubjectPrefix();
  const app = await h.variant(LIMITS, { subjects: natsSubjects(prefix) });
  return { app, prefix };
};

const call = async (
  app: FastifyInstance,
  userId: string,
  method: 'GET' | 'POST',
  url: string,
  body?: object,
) => {
  const res = await app.inject({
    method,
    url,
    headers: { authorization: `Bearer ${await signToken(userId)}` },
    ...(body ? { payload: body } : {}),
  });
  return { status: res.statusCode, headers: res.headers, body: res.json() };
};

const expectRateLimited = (res: { status: number; headers: Record<string, unknown>; body: unknown }) => {
  expect(res.status).toBe(429);
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(60);
  expect(res.body).toEqual({
    error: { code: 'rate_limited', message: expect.any(String), details: { retryAfterSeconds: retryAfter } },
  });
};

describe('HTTP rate limits', () => {
  it('a burst on POST /v1/notifications/read gets 429 with Retry-After; another user is unaffected', async () => {
    const { app } = await limitedApp();
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++)
        statuses.push((await call(app, 'bob', 'POST', '/v1/notifications/read', { all: true })).status);
      expect(statuses).toEqual([200, 200, 200]);
      const before = await h.logSize();
      expectRateLimited(await call(app, 'bob', 'POST', '/v1/notifications/read', { all: true }));
      expect(await h.logSize(), 'nothing appended').toBe(before);
      expect((await call(app, 'carol', 'POST', '/v1/notifications/read', { all: true })).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('a burst of minPosition queries (each held up to 2 s) gets 429 at once beyond the budget', async () => {
    const { app } = await limitedApp();
    try {
      // The projector does not run here, so every admitted query waits out the whole 2 s.
      const url = `/v1/conversations?minPosition=${position}`;
      const answers = await Promise.all(Array.from({ length: 6 }, () => call(app, 'carol', 'GET', url)));
      const statuses = answers.map((a) => a.status).sort();
      expect(statuses).toEqual([200, 200, 200, 429, 429, 429]);
      for (const a of answers.filter((x) => x.status === 429)) expectRateLimited(a);
      expect((await call(app, 'dave', 'GET', '/v1/conversations')).status).toBe(200);
    } finally {
      await app.close();
    }
  });

  it('requests without a valid token count per IP: refused tokens turn from 401 into 429', async () => {
    const { app } = await limitedApp();
    try {
      const attempt = () =>
        app.inject({ method: 'GET', url: '/v1/unread', headers: { authorization: 'Bearer not.a.token' } });
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await attempt()).statusCode);
      expect(statuses).toEqual([401, 401, 401, 429]);
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(429);
      expect((await call(app, 'dave', 'GET', '/v1/unread')).status, 'a signed-in user is keyed by id').toBe(
        200,
      );
    } finally {
      await app.close();
    }
  });

  it('is shared by instances: two apps on one database draw from one budget', async () => {
    const [a, b] = [await limitedApp(), await limitedApp()];
    try {
      const statuses = [
        (await call(a.app, 'erin', 'GET', '/v1/unread')).status,
        (await call(b.app, 'erin', 'GET', '/v1/unread')).status,
        (await call(a.app, 'erin', 'GET', '/v1/unread')).status,
      ];
      expect(statuses).toEqual([200, 200, 200]);
      // Each instance sees the others' hits at most one flush interval (and a round trip) late.
      await Promise.all([a.app.rateLimits.drained(), b.app.rateLimits.drained()]);
      await sleep(RATE_LIMIT_FLUSH_INTERVAL_MS + 1);
      expectRateLimited(await call(b.app, 'erin', 'GET', '/v1/unread'));
      expectRateLimited(await call(a.app, 'erin', 'GET', '/v1/unread'));
    } finally {
      await a.app.close();
      await b.app.close();
    }
  });

  it('lets an instance that has not heard the shared count through at most once per user and window', async () => {
    const [a, b] = [await limitedApp(), await limitedApp()];
    try {
      for (let i = 0; i < 3; i++) expect((await call(a.app, 'hal', 'GET', '/v1/unread')).status).toBe(200);
      await a.app.rateLimits.drained();
      // b knows nothing of hal yet: its first request is answered before the shared count is.
      const burst = await Promise.all(
        Array.from({ length: 4 }, () => call(b.app, 'hal', 'GET', '/v1/unread')),
      );
      expect(burst.map((r) => r.status).sort()).toEqual([200, 429, 429, 429]);
      expectRateLimited(await call(a.app, 'hal', 'GET', '/v1/unread'));
    } finally {
      await a.app.close();
      await b.app.close();
    }
  });

  it('counts the hits of many users in few statements, answering each without waiting for one', async () => {
    // A long flush interval makes the grouping deterministic: the first hit's statement starts at once,
    // every later one waits for the interval (or `drained`).
    const store = new PostgresRateLimitStore(h.pool, createLogger('rate-limit-test', 'silent'), 60_000);
    const counted = vi.spyOn(h.pool, 'query');
    try {
      for (let i = 0; i < 20; i++)
        expect(await store.hit(`queries:trickle-${i}`, 60_000)).toMatchObject({ current: 1 });
      await store.drained();
      // A statement is given as its text or as a query config (named statements).
      const statements = counted.mock.calls.filter((c) =>
        (typeof c[0] === 'string' ? c[0] : String((c[0] as { text?: unknown }).text)).includes(
          'INSERT INTO rate_limit.windows',
        ),
      );
      expect(statements.length).toBeGreaterThan(0);
      expect(statements.length).toBeLessThanOrEqual(2);
    } finally {
      counted.mockRestore();
    }
    const { rows } = await h.pool.query<{ hits: number }>(
      "SELECT hits FROM rate_limit.windows WHERE key LIKE 'queries:trickle-%'",
    );
    expect(rows.map((r) => r.hits)).toEqual(Array(20).fill(1));
    // A later hit on a view older than the interval asks the shared table (a statement at once).
    expect(await store.hit('queries:trickle-0', 60_000)).toMatchObject({ current: 2 });
  });
});

describe('commands over NATS (the ws-gateway path)', () => {
  it('draw from the same per-user command budget as HTTP', async () => {
    const { app, prefix } = await limitedApp();
    try {
      const typing = async (userId: string): Promise<CommandReply> => {
        const request = { userId, params: { conversationId }, body: {} };
        const msg = await h.nats.request(`${prefix}.cmd.typing`, JSON.stringify(request), { timeout: 5000 });
        return JSON.parse(new TextDecoder().decode(msg.data)) as CommandReply;
      };
      const url = `/v1/conversations/${conversationId}/typing`;
      expect((await call(app, 'frank', 'POST', url, {})).status).toBe(202);
      expect((await typing('frank')).status).toBe(202);
      expect((await typing('frank')).status).toBe(202);
      const limited = await typing('frank');
      expect(limited).toEqual({
        ok: false,
        status: 429,
        error: {
          code: 'rate_limited',
          message: expect.any(String),
          details: { retryAfterSeconds: expect.any(Number) },
        },
      });
      expectRateLimited(await call(app, 'frank', 'POST', url, {}));
      expect((await typing('gina')).status, 'another user is unaffected').toBe(202);
    } finally {
      await app.close();
    }
  });
});

describe('OpenAPI', () => {
  it('lists 429 on every route, and 401/503 (and 413 with a body) on every /v1 route', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ path, method, statuses: Object.keys(op.responses) })),
    );
    expect(operations.length).toBeGreaterThan(10);
    for (const { path, method, statuses } of operations) {
      const where = `${method.toUpperCase()} ${path}`;
      expect(statuses, where).toContain('429');
      if (!path.startsWith('/v1/')) continue;
      expect(statuses, where).toEqual(expect.arrayContaining(['401', '503']));
      if (method !== 'get') expect(statuses, where).toContain('413');
    }
  });
});
