import { randomUUID } from 'node:crypto';
import { queryShapes } from '@chat/events';
import { createEventStore } from '@chat/eventstore';
import { createLogger } from '@chat/platform';
import { postgresOutage, waitFor } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeOf } from '../src/plugins/route-schema.js';
import { type Harness, startHarness } from './harness.js';

const DEAD_DATABASE = 'postgres://postgres@127.0.0.1:1/nowhere';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('ops');
});
afterAll(() => h?.close());

describe('operations', () => {
  it('/healthz and /readyz answer 200 when the event store, Postgres and NATS answer', async () => {
    expect(await h.call(null, 'GET', '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await h.call(null, 'GET', '/readyz')).toMatchObject({
      status: 200,
      body: { status: 'ready', checks: { eventstore: 'ok', postgres: 'ok', nats: 'ok' } },
    });
  });

  it('/metrics exposes request latency by route, append latency, conflicts and retries', async () => {
    const id = await h.createGroup('alice', ['bob']);
    await h.send('alice', id);
    const res = await h.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('command_api_http_request_duration_seconds_bucket');
    expect(res.body).toContain('route="/v1/conversations/:conversationId/messages"');
    expect(res.body).toContain(
      'command_api_append_duration_seconds_bucket{le="0.001",stream="conversation"}',
    );
    expect(res.body).toContain('command_api_append_conflicts_total');
    expect(res.body).toContain('command_api_command_retries_total');
  });

  it('serves the OpenAPI document at /docs/json and a UI at /docs', async () => {
    const doc = await h.app.inject({ method: 'GET', url: '/docs/json' });
    expect(doc.statusCode).toBe(200);
    const paths = Object.keys(doc.json().paths);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/v1/conversations',
        '/v1/conversations/{conversationId}',
        '/v1/conversations/{conversationId}/members',
        '/v1/conversations/{conversationId}/members/{userId}',
        '/v1/conversations/{conversationId}/messages',
        '/v1/conversations/{conversationId}/messages/{messageId}',
        '/v1/conversations/{conversationId}/read',
        '/v1/conversations/{conversationId}/typing',
        '/v1/conversations/{conversationId}/mute',
        '/v1/unread',
        '/v1/notifications',
        '/v1/notifications/read',
        '/v1/presence',
        '/v1/admin/streams/{streamId}',
      ]),
    );
    const ui = await h.app.inject({ method: 'GET', url: '/docs' });
    expect([200, 302]).toContain(ui.statusCode);
  });

  it('documents every route: operationId, summary, and every status it can answer', async () => {
    type Operation = { operationId?: string; summary?: string; responses: Record<string, unknown> };
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, Operation>>;
    };
    const operations = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, ...op })),
    );
    expect(operations.length).toBeGreaterThanOrEqual(16);
    const ids = new Set<string>();
    for (const op of operations) {
      expect(op.operationId, op.route).toMatch(/^[a-zA-Z]+$/);
      expect(op.summary, op.route).toEqual(expect.any(String));
      ids.add(op.operationId ?? '');
      expect(Object.keys(op.responses), op.route).toEqual(
        expect.arrayContaining(['400', '401', '429', '503']),
      );
    }
    expect(ids.size).toBe(operations.length);
    const statuses = (route: string) =>
      Object.keys(operations.find((op) => op.route === route)?.responses ?? {}).sort();
    expect(statuses('POST /v1/conversations/{conversationId}/messages')).toEqual([
      '200',
      '201',
      '400',
      '401',
      '403',
      '404',
      '409',
      '413',
      '429',
      '503',
    ]);
    expect(statuses('DELETE /v1/conversations/{conversationId}/members/{userId}')).toEqual([
      '200',
      '400',
      '401',
      '403',
      '404',
      '413',
      '429',
      '503',
    ]);
    expect(statuses('POST /v1/conversations/{conversationId}/typing')).toEqual([
      '202',
      '400',
      '401',
      '404',
      '413',
      '429',
      '503',
    ]);
    expect(statuses('GET /v1/admin/streams/{streamId}')).toEqual(['200', '400', '401', '403', '429', '503']);
    expect(statuses('POST /v1/admin/users/{userId}/erase')).toEqual([
      '200',
      '400',
      '401',
      '403',
      '413',
      '429',
      '503',
    ]);
  });

  it('says which bodies may be left out: the body-less commands take none, the others require theirs', async () => {
    type Body = { required?: boolean };
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, { requestBody?: Body; 'x-optional-body'?: unknown }>>;
    };
    const body = (method: string, path: string) => doc.paths[path]?.[method]?.requestBody;
    expect(body('post', '/v1/conversations/{conversationId}/typing')?.required).toBe(false);
    expect(body('delete', '/v1/conversations/{conversationId}/members/{userId}')?.required).toBe(false);
    expect(body('post', '/v1/conversations/{conversationId}/messages')?.required).toBe(true);
    expect(body('post', '/v1/conversations')?.required).toBe(true);
    expect(body('post', '/v1/admin/users/{userId}/erase')?.required).toBe(false);
    // The mark that carries the rule into the document is not part of it.
    expect(JSON.stringify(doc)).not.toContain('x-optional-body');
    // What the document says holds: a body-less typing without a body is taken.
    const started = await h.call('doc-a', 'POST', '/v1/conversations', {
      kind: 'group',
      members: ['doc-b'],
      title: 'bodies',
    });
    const typing = await h.call('doc-a', 'POST', `/v1/conversations/${started.body.conversationId}/typing`);
    expect([typing.status, typing.body]).toEqual([202, { throttled: false }]);
  });

  it('writes every answer through its response schema: unknown fields dropped, a drifted shape refused', async () => {
    const answers: Record<string, unknown> = {
      '/extra': { total: 1, conversations: 2, internal: 'not for clients' },
      '/drifted': { total: '1', conversations: 2 },
    };
    const app = await h.variant({}, {}, (instance) => {
      for (const [url, answer] of Object.entries(answers))
        instance.route({ ...routeOf(queryShapes.unread), url, handler: async () => answer });
    });
    try {
      const extra = await app.inject({ method: 'GET', url: '/extra' });
      expect(extra.json()).toEqual({ total: 1, conversations: 2 });
      const drifted = await app.inject({ method: 'GET', url: '/drifted' });
      expect(drifted.statusCode).toBe(503);
      expect(drifted.json()).toEqual({ error: { code: 'unavailable', message: expect.any(String) } });
    } finally {
      await app.close();
    }
  });

  it('answers 503 unavailable when the event store is down, and /readyz names what failed', async () => {
    const logger = createLogger('test', 'silent');
    const deadStore = createEventStore({ databaseUrl: DEAD_DATABASE, logger, scavengeIntervalMs: 0 });
    const deadPool = new pg.Pool({ connectionString: DEAD_DATABASE });
    deadPool.on('error', () => undefined);
    const app = await h.variant({}, { store: deadStore, pool: deadPool });
    try {
      const res = await app.inject({
        method: 'POST',
        url: '/v1/conversations',
        headers: { authorization: `Bearer ${await h.tokenFor('alice')}` },
        payload: { kind: 'group', members: ['bob'] },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ error: { code: 'unavailable', message: expect.any(String) } });
      const ready = await app.inject({ method: 'GET', url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'unavailable', checks: { nats: 'ok' } });
      expect(ready.json().checks.eventstore).not.toBe('ok');
      expect(ready.json().checks.postgres).not.toBe('ok');
    } finally {
      await app.close();
      await deadStore.close();
      await deadPool.end();
    }
  });

  it('writes nothing, then or later, for a command answered 503 during an outage of its own database', async () => {
    // The app's store and pool on the harness's database, under their own name, so that the outage
    // hits them while the harness's pool counts the log.
    const url = new URL(String(h.pool.options.connectionString));
    const database = url.pathname.slice(1);
    const applicationName = 'ops-outage';
    url.searchParams.set('application_name', applicationName);
    const logger = createLogger('test', 'silent');
    const store = createEventStore({ databaseUrl: url.toString(), logger, scavengeIntervalMs: 0 });
    const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
    pool.on('error', () => undefined);
    const app = await h.variant({}, { store, pool });
    const as = async (userId: string) => ({ authorization: `Bearer ${await h.tokenFor(userId)}` });
    try {
      // Created through the app, so its writer has the conversation cached: the send below gets as far
      // as the append, and the new conversation fails earlier, on reading its stream.
      const created = await app.inject({
        method: 'POST',
        url: '/v1/conversations',
        headers: await as('alice'),
        payload: { kind: 'group', members: ['bob'] },
      });
      expect(created.statusCode).toBe(201);
      const existing: string = created.json().conversationId;
      const before = await h.logSize();
      const answers: number[] = [];
      await postgresOutage(h.pool, {
        database,
        applicationName,
        ms: 3000,
        during: async () => {
          await new Promise((r) => setTimeout(r, 200));
          for (const request of [
            {
              method: 'POST' as const,
              url: '/v1/conversations',
              payload: { kind: 'group', members: ['bob'] },
            },
            {
              method: 'POST' as const,
              url: `/v1/conversations/${existing}/messages`,
              payload: { messageId: randomUUID(), body: 'during the outage' },
            },
          ]) {
            const res = await app.inject({ ...request, headers: await as('alice') });
            answers.push(res.statusCode);
            if (res.statusCode === 503) expect(res.json().error.code).toBe('unavailable');
          }
        },
      });
      expect(answers).toEqual([503, 503]);
      // Back up: nothing was appended, and nothing is appended later by a retry nobody waits for...
      expect(await h.logSize()).toBe(before);
      await new Promise((r) => setTimeout(r, 2000));
      expect(await h.logSize()).toBe(before);
      // ...while the same app appends again once the store answers.
      const after = await waitFor(
        async () => {
          const res = await app.inject({
            method: 'POST',
            url: `/v1/conversations/${existing}/messages`,
            headers: await as('alice'),
            payload: { messageId: randomUUID(), body: 'after the outage' },
          });
          return res.statusCode === 201 && res;
        },
        { timeoutMs: 30_000, what: 'a send to succeed after the outage' },
      );
      expect(after.json().seq).toBe(1);
      expect(await h.logSize()).toBe(before + 1);
    } finally {
      await app.close();
      await store.close();
      await pool.end();
    }
  });
});
