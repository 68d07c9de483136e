import { createEventStore } from '@chat/eventstore';
import { createLogger } from '@chat/platform';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
    expect(res.body).toContain('route="/v1/conversations/:id/messages"');
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
        '/v1/conversations/{id}/members',
        '/v1/conversations/{id}/members/{userId}',
        '/v1/conversations/{id}/messages',
        '/v1/conversations/{id}/messages/{messageId}',
        '/v1/conversations/{id}/read',
        '/v1/conversations/{id}/typing',
        '/v1/conversations/{id}/mute',
      ]),
    );
    const ui = await h.app.inject({ method: 'GET', url: '/docs' });
    expect([200, 302]).toContain(ui.statusCode);
  });

  it('answers 503 unavailable when the event store is down, and /readyz names what failed', async () => {
    const logger = createLogger('test', 'silent');
    const deadStore = createEventStore({ databaseUrl: DEAD_DATABASE, logger, scavengeIntervalMs: 0 });
    const deadPool = new pg.Pool({ connectionString: DEAD_DATABASE });
    deadPool.on('error', () => undefined);
    const app = await h.variant({}, { store: deadStore, pool: deadPool });
    try {
      const before = await h.logSize();
      const res = await app.inject({
        method: 'POST',
        url: '/v1/conversations',
        headers: { authorization: `Bearer ${await h.tokenFor('alice')}` },
        payload: { kind: 'group', members: ['bob'] },
      });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ error: { code: 'unavailable', message: expect.any(String) } });
      expect(await h.logSize()).toBe(before);
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
});
