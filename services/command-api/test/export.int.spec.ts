import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { RecordedEvent } from '@chat/eventstore';
import { signToken, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

// The event export (issue 15) as an analyst uses it: over HTTP on a real port, against a log written
// through the API.

const ROOT = resolve(import.meta.dirname, '../../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const CHATCTL = join(ROOT, 'packages/chatctl/src/main.ts');

let h: Harness;
let base: string;
let analyst: string;
let group: string;
let direct: string;

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

/** The whole log as the store reads it (upcast), in log order. */
const wholeLog = async (): Promise<RecordedEvent[]> => {
  const out: RecordedEvent[] = [];
  let from: string | undefined;
  for (;;) {
    const page = await h.store.readAll({ fromPosition: from, maxCount: 1000 });
    out.push(...page);
    from = page.at(-1)?.position;
    if (page.length < 1000) return out;
  }
};

const getJson = async (query: string, token = analyst) => {
  const res = await fetch(`${base}/v1/admin/events${query}`, { headers: auth(token) });
  return {
    status: res.status,
    body: (await res.json()) as { events: RecordedEvent[]; nextPosition: string },
  };
};

const getNdjson = async (query: string, token = analyst) => {
  const res = await fetch(`${base}/v1/admin/events${query}`, {
    headers: { ...auth(token), accept: 'application/x-ndjson' },
  });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};

/** Pages through the export from `from` with `limit`; returns the events and the pages' nextPositions. */
const pageThrough = async (query: string, limit: number, from?: string) => {
  const events: RecordedEvent[] = [];
  const positions: string[] = [];
  let next = from;
  for (let i = 0; i < 1000; i++) {
    const { status, body } = await getJson(`?limit=${limit}${next ? `&from=${next}` : ''}${query}`);
    expect(status).toBe(200);
    if (body.events.length === 0) {
      expect(body.nextPosition).toBe(next ?? '0'.repeat(32));
      return { events, positions };
    }
    events.push(...body.events);
    next = body.nextPosition;
    expect(next).toBe(body.events.at(-1)?.position);
    positions.push(next);
  }
  throw new Error('export did not end');
};

const exportStreamsOpen = async (): Promise<number> => {
  const res = await h.app.inject({ method: 'GET', url: '/metrics' });
  const line = res.body.split('\n').find((l) => l.startsWith('command_api_event_export_streams '));
  return Number(line?.split(' ')[1]);
};

beforeAll(async () => {
  h = await startHarness('export');
  group = await h.createGroup('alice', ['bob', 'carol'], 'Launch');
  for (let i = 0; i < 25; i++) {
    const res = await h.send(i % 2 ? 'bob' : 'alice', group, `message ${i}`);
    expect(res.status).toBe(201);
  }
  const d = await h.call('alice', 'POST', '/v1/conversations', { kind: 'direct', members: ['dave'] });
  direct = d.body.conversationId;
  await h.send('dave', direct, 'hi alice');
  const read = await h.call('carol', 'POST', `/v1/conversations/${group}/read`, { upToSeq: 10 });
  expect(read.body.position).toEqual(expect.any(String));
  const last = await h.call('carol', 'PUT', `/v1/conversations/${group}/mute`, { until: null });
  await waitFor(async () => (await h.store.headPosition()) >= last.body.position, { timeoutMs: 20_000 });
  analyst = await signToken('ana', { roles: ['analyst'] });
  base = await h.app.listen({ port: 0, host: '127.0.0.1' });
}, 60_000);
afterAll(() => h?.close());

describe('GET /v1/admin/events (JSON pages)', () => {
  it('an analyst pages the whole log from the start to the end in log order, and resumes from the middle', async () => {
    const log = await wholeLog();
    expect(log).toHaveLength(30);
    const { events, positions } = await pageThrough('', 7);
    expect(events.map((e) => e.id)).toEqual(log.map((e) => e.id));
    expect(events).toEqual(log.map((e) => ({ ...e })));
    const middle = positions[2] as string;
    const resumed = await pageThrough('', 1000, middle);
    expect(resumed.events.map((e) => e.id)).toEqual(log.slice(21).map((e) => e.id));
    // from=0…0 is the start of the log, like no from at all.
    expect((await getJson(`?from=${'0'.repeat(32)}&limit=10000`)).body.events).toHaveLength(log.length);
  });

  it('filters by types and by streamPrefix', async () => {
    const log = await wholeLog();
    const typed = await pageThrough('&types=MessageSent,ConversationStarted', 5);
    const want = log.filter((e) => e.type === 'MessageSent' || e.type === 'ConversationStarted');
    expect(want.length).toBe(28);
    expect(typed.events.map((e) => e.id)).toEqual(want.map((e) => e.id));
    const receipts = await pageThrough('&streamPrefix=receipts-', 100);
    expect(receipts.events.map((e) => e.type)).toEqual(['ConversationRead']);
    const direct_ = await pageThrough(`&streamPrefix=conversation-${direct}`, 100);
    expect(direct_.events.map((e) => e.type)).toEqual(['ConversationStarted', 'MessageSent']);
    expect(direct_.events[1]?.data.body).toBe('hi alice');
  });
});

describe('GET /v1/admin/events (NDJSON)', () => {
  it('streams the log to its end, line for line what `chatctl replay` prints; resumable from any position', async () => {
    const { stdout } = await promisify(execFile)(TSX, [CHATCTL, 'replay', '--no-progress'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: h.databaseUrl, LOG_LEVEL: 'silent' },
    });
    const res = await getNdjson('');
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^application\/x-ndjson/);
    expect(res.text).toBe(stdout);
    const lines = stdout.trimEnd().split('\n');
    const middle = JSON.parse(lines[11] as string).position as string;
    expect((await getNdjson(`?from=${middle}`)).text).toBe(`${lines.slice(12).join('\n')}\n`);
    const filtered = await getNdjson('?types=MemberJoined,ConversationMuted&streamPrefix=user-');
    expect(
      filtered.text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l).type),
    ).toEqual(['ConversationMuted']);
  });

  it('with follow=true sends the selected events after from, then new ones as they are appended; ends when the client goes', async () => {
    const log = await wholeLog();
    const from = log.at(-3)?.position as string;
    const client = new AbortController();
    const query = `follow=true&from=${from}&types=MessageSent,ConversationMuted`;
    const res = await fetch(`${base}/v1/admin/events?${query}`, {
      headers: { ...auth(analyst), accept: 'application/x-ndjson' },
      signal: client.signal,
    });
    expect(res.status).toBe(200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    let text = '';
    const readUntil = async (done: (lines: string[]) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const lines = text.split('\n').filter((l) => l.length > 0);
        if (done(lines)) return lines.map((l) => JSON.parse(l) as RecordedEvent);
        const chunk = await reader.read();
        if (chunk.done) throw new Error(`stream ended early: ${text}`);
        text += decoder.decode(chunk.value, { stream: true });
      }
      throw new Error('too many chunks');
    };
    const caughtUp = await readUntil((lines) => lines.length >= 1);
    expect(caughtUp.map((e) => e.type)).toEqual(['ConversationMuted']);
    expect(await exportStreamsOpen()).toBe(1);
    const messageId = randomUUID();
    await h.call('alice', 'POST', `/v1/conversations/${group}/messages`, { messageId, body: 'live one' });
    const live = await readUntil((lines) => lines.length >= 2);
    expect(live.map((e) => e.type)).toEqual(['ConversationMuted', 'MessageSent']);
    expect(live[1]?.data).toMatchObject({ messageId, body: 'live one' });
    client.abort();
    await waitFor(async () => (await exportStreamsOpen()) === 0, { what: 'the export stream to end' });
  });
});

describe('who may export', () => {
  it('admin and analyst tokens may; a member token gets 403 and no token 401', async () => {
    const admin = await signToken('root', { roles: ['admin'] });
    expect((await getJson('?limit=1', admin)).status).toBe(200);
    const member = await getJson('?limit=1', await h.tokenFor('alice'));
    expect(member.status).toBe(403);
    expect(member.body).toEqual({ error: { code: 'forbidden', message: expect.any(String) } });
    expect((await getNdjson('', await h.tokenFor('alice'))).status).toBe(403);
    const anonymous = await fetch(`${base}/v1/admin/events`);
    expect(anonymous.status).toBe(401);
  });

  it('an analyst token writes nothing: 403 on write routes, and the admin stream read stays admin-only', async () => {
    const before = await h.logSize();
    const token = await signToken('alice', { roles: ['analyst'] });
    const writes = [
      ['POST', '/v1/conversations', { kind: 'group', members: ['bob'] }],
      ['POST', `/v1/conversations/${group}/messages`, { messageId: randomUUID(), body: 'x' }],
      ['PUT', `/v1/conversations/${group}/mute`, { until: null }],
      ['POST', '/v1/notifications/read', { all: true }],
    ] as const;
    for (const [method, url, body] of writes) {
      const res = await h.app.inject({ method, url, headers: auth(token), payload: body });
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json()).toEqual({ error: { code: 'forbidden', message: 'the analyst role is read-only' } });
    }
    expect(await h.logSize()).toBe(before);
    const stream = await h.app.inject({
      method: 'GET',
      url: `/v1/admin/streams/conversation-${group}`,
      headers: auth(token),
    });
    expect(stream.statusCode).toBe(403);
  });
});

describe('the OpenAPI document', () => {
  it('names the export with its operationId, every status and both media types', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/docs/json' })).json();
    const op = doc.paths['/v1/admin/events'].get;
    expect(op.operationId).toBe('exportEvents');
    expect(Object.keys(op.responses).sort()).toEqual(['200', '400', '401', '403', '429', '503']);
    expect(Object.keys(op.responses['200'].content).sort()).toEqual([
      'application/json',
      'application/x-ndjson',
    ]);
  });
});

describe('bad parameters', () => {
  it('answer 400 with the API.md error body naming the parameter', async () => {
    const cases: [string, string][] = [
      ['?limit=0', 'limit'],
      ['?limit=10001', 'limit'],
      ['?limit=1e3', 'limit'],
      ['?from=xyz', 'from'],
      ['?from=0', 'from'],
      ['?types=MessageSent,Nope', 'types'],
      ['?types=', 'types'],
      ['?streamPrefix=', 'streamPrefix'],
      ['?streamPrefix=%00', 'streamPrefix'],
      ['?follow=yes', 'follow'],
      ['?follow=true', 'follow'],
      ['?unknown=1', ''],
    ];
    for (const [query, param] of cases) {
      const res = await getJson(query);
      expect(res.status, query).toBe(400);
      const body = res.body as unknown as { error: { code: string; details: { path: string[] }[] } };
      expect(body.error.code, query).toBe('validation_failed');
      if (param)
        expect(
          body.error.details.map((d) => d.path[0]),
          query,
        ).toContain(param);
    }
  });
});
