import { randomUUID } from 'node:crypto';
import { type AddressInfo, createConnection } from 'node:net';
import { migrateNotifier } from '@chat/notifications';
import { signToken } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directConversationId } from '../src/commands/ids.js';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
let id: string;
let messageId: string;
beforeAll(async () => {
  h = await startHarness('badinput');
  // The notification list reads the notifier's tables: a forged cursor must be refused before it.
  await migrateNotifier(h.pool);
  id = await h.createGroup('alice', ['bob']);
  messageId = (await h.send('alice', id, 'hello')).body.messageId;
});
afterAll(() => h?.close());

type Case = [
  name: string,
  method: 'POST' | 'PATCH' | 'PUT' | 'DELETE',
  url: () => string,
  body: unknown,
  status: number,
  code: string,
  path?: (string | number)[],
];

const send = () => `/v1/conversations/${id}/messages`;
const combining = 'e\u0301'; // 2 code points that render as one character
const cases: Case[] = [
  ['JSON syntax error', 'POST', send, '{"messageId": "x", "body": ', 400, 'validation_failed'],
  ['JSON with trailing garbage', 'POST', send, '{"messageId":"a"} x', 400, 'validation_failed'],
  ['body is a JSON array', 'POST', send, [], 400, 'validation_failed'],
  [
    'wrong type: body a number',
    'POST',
    send,
    { messageId: randomUUID(), body: 42 },
    400,
    'validation_failed',
    ['body'],
  ],
  ['missing messageId', 'POST', send, { body: 'hi' }, 400, 'validation_failed', ['messageId']],
  [
    'unknown field',
    'POST',
    send,
    { messageId: randomUUID(), body: 'hi', extra: 1 },
    400,
    'validation_failed',
  ],
  [
    'invalid UUID messageId',
    'POST',
    send,
    { messageId: 'not-a-uuid', body: 'hi' },
    400,
    'validation_failed',
    ['messageId'],
  ],
  [
    'invalid UUID replyTo',
    'POST',
    send,
    { messageId: randomUUID(), body: 'hi', replyTo: '123' },
    400,
    'validation_failed',
    ['replyTo'],
  ],
  [
    'invalid UUID in the path',
    'POST',
    () => '/v1/conversations/nope/messages',
    { messageId: randomUUID(), body: 'hi' },
    400,
    'validation_failed',
    ['conversationId'],
  ],
  ['empty body', 'POST', send, { messageId: randomUUID(), body: '' }, 400, 'validation_failed', ['body']],
  [
    'whitespace-only body',
    'POST',
    send,
    { messageId: randomUUID(), body: ' \n\t\u00a0 ' },
    400,
    'validation_failed',
    ['body'],
  ],
  [
    '4,001 code points',
    'POST',
    send,
    { messageId: randomUUID(), body: 'a'.repeat(4001) },
    400,
    'validation_failed',
    ['body'],
  ],
  [
    '4,001 emoji',
    'POST',
    send,
    { messageId: randomUUID(), body: '😀'.repeat(4001) },
    400,
    'validation_failed',
    ['body'],
  ],
  [
    'group member not a userId',
    'POST',
    () => '/v1/conversations',
    { kind: 'group', members: ['ok', 'bad user'] },
    400,
    'validation_failed',
    ['members', 1],
  ],
  [
    'unknown kind',
    'POST',
    () => '/v1/conversations',
    { kind: 'channel', members: ['bob'] },
    400,
    'validation_failed',
    ['kind'],
  ],
  [
    'title over 200',
    'POST',
    () => '/v1/conversations',
    { kind: 'group', members: ['bob'], title: 't'.repeat(201) },
    400,
    'validation_failed',
    ['title'],
  ],
  [
    'upToSeq negative',
    'POST',
    () => `/v1/conversations/${id}/read`,
    { upToSeq: -1 },
    400,
    'validation_failed',
    ['upToSeq'],
  ],
  [
    'upToSeq not an integer',
    'POST',
    () => `/v1/conversations/${id}/read`,
    { upToSeq: 1.5 },
    400,
    'validation_failed',
    ['upToSeq'],
  ],
  [
    'upToSeq a string',
    'POST',
    () => `/v1/conversations/${id}/read`,
    { upToSeq: '1' },
    400,
    'validation_failed',
    ['upToSeq'],
  ],
  [
    'upToSeq past the end',
    'POST',
    () => `/v1/conversations/${id}/read`,
    { upToSeq: 99 },
    400,
    'validation_failed',
    ['upToSeq'],
  ],
  [
    'mute until not a time',
    'PUT',
    () => `/v1/conversations/${id}/mute`,
    { until: 'tomorrow' },
    400,
    'validation_failed',
    ['until'],
  ],
  [
    'mute without until',
    'PUT',
    () => `/v1/conversations/${id}/mute`,
    {},
    400,
    'validation_failed',
    ['until'],
  ],
  ['typing with fields', 'POST', () => `/v1/conversations/${id}/typing`, { x: 1 }, 400, 'validation_failed'],
  [
    'add member without userId',
    'POST',
    () => `/v1/conversations/${id}/members`,
    {},
    400,
    'validation_failed',
    ['userId'],
  ],
  [
    'edit with a 4,001 body',
    'PATCH',
    () => `${send()}/${messageId}`,
    { body: 'b'.repeat(4001) },
    400,
    'validation_failed',
    ['body'],
  ],
  [
    'remove an invalid userId',
    'DELETE',
    () => `/v1/conversations/${id}/members/${'x'.repeat(65)}`,
    undefined,
    400,
    'validation_failed',
    ['userId'],
  ],
  [
    '70 KiB body',
    'POST',
    send,
    { messageId: randomUUID(), body: 'a'.repeat(70 * 1024) },
    413,
    'payload_too_large',
  ],
  ['unknown route', 'POST', () => '/v1/nothing-here', {}, 404, 'not_found'],
];

describe('bad input', () => {
  it.each(cases)('%s, nothing appended', async (_name, method, url, body, status, code, path) => {
    const before = await h.logSize();
    const headers: Record<string, string> =
      typeof body === 'string' ? { 'content-type': 'application/json' } : {};
    const res = await h.call('alice', method, url(), body, headers);
    expect(res.status).toBe(status);
    expect(Object.keys(res.body)).toEqual(['error']);
    expect(res.body.error).toMatchObject({ code, message: expect.any(String) });
    if (code === 'validation_failed') {
      expect(res.body.error.details).toEqual(
        expect.arrayContaining([{ path: expect.any(Array), message: expect.any(String) }]),
      );
      if (path) expect(res.body.error.details.map((d: { path: unknown }) => d.path)).toContainEqual(path);
    }
    expect(await h.logSize()).toBe(before);
  });

  it('checks the schema before membership (a non-member with a bad body gets 400)', async () => {
    const res = await h.call('mallory', 'POST', send(), { messageId: 'x', body: 'hi' });
    expect(res.status).toBe(400);
  });

  it('accepts bodies of exactly 4,000 code points: emoji, combining characters, and trims around them', async () => {
    for (const body of ['😀'.repeat(4000), combining.repeat(2000), `  ${'a'.repeat(4000)}  `]) {
      const res = await h.call('alice', 'POST', send(), { messageId: randomUUID(), body });
      expect(res.status).toBe(201);
      const [event] = await h.store.readStream(`conversation-${id}`, { direction: 'backwards', maxCount: 1 });
      expect(event?.data.body).toBe(body.trim());
    }
  });

  it('is still alive', async () => {
    expect((await h.call(null, 'GET', '/healthz')).status).toBe(200);
    expect((await h.send('bob', id, 'still here')).status).toBe(201);
  });
});

const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

// API.md §2 preamble (v1.1): every text field rejects U+0000 and unpaired surrogates, times are bounded,
// and no input reaches storage to fail there (which answered 503 and could poison the log).
describe('text and numbers that storage cannot hold', () => {
  const textCases: [
    name: string,
    method: 'POST' | 'PATCH' | 'PUT',
    url: () => string,
    body: unknown,
    path: (string | number)[],
  ][] = [
    ['a body with U+0000', 'POST', send, { messageId: randomUUID(), body: 'a\u0000b' }, ['body']],
    [
      'a body with a lone high surrogate',
      'POST',
      send,
      { messageId: randomUUID(), body: 'a\ud800b' },
      ['body'],
    ],
    [
      'a body ending in a lone high surrogate',
      'POST',
      send,
      { messageId: randomUUID(), body: 'ab\ud83d' },
      ['body'],
    ],
    [
      'a body with a lone low surrogate',
      'POST',
      send,
      { messageId: randomUUID(), body: '\udc00b' },
      ['body'],
    ],
    ['an edit with U+0000', 'PATCH', () => `${send()}/${messageId}`, { body: 'x\u0000' }, ['body']],
    [
      'a title with U+0000',
      'POST',
      () => '/v1/conversations',
      { kind: 'group', members: ['bob'], title: 't\u0000' },
      ['title'],
    ],
    [
      'a title with a lone surrogate',
      'POST',
      () => '/v1/conversations',
      { kind: 'group', members: ['bob'], title: '\udfff' },
      ['title'],
    ],
    [
      'mute until year 0',
      'PUT',
      () => `/v1/conversations/${id}/mute`,
      { until: '0000-01-01T00:00:00Z' },
      ['until'],
    ],
    [
      'mute until before 1970',
      'PUT',
      () => `/v1/conversations/${id}/mute`,
      { until: '1969-12-31T23:59:59.999Z' },
      ['until'],
    ],
    [
      'mute until 1970 with a positive offset',
      'PUT',
      () => `/v1/conversations/${id}/mute`,
      { until: '1970-01-01T00:30:00+01:00' },
      ['until'],
    ],
    [
      'mute until past 9999 once in UTC',
      'PUT',
      () => `/v1/conversations/${id}/mute`,
      { until: '9999-12-31T23:59:59.999-00:01' },
      ['until'],
    ],
  ];
  it.each(textCases)(
    '%s → 400 validation_failed, nothing appended',
    async (_name, method, url, body, path) => {
      const before = await h.logSize();
      const res = await h.call('alice', method, url(), body);
      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.details.map((d: { path: unknown }) => d.path)).toContainEqual(path);
      expect(await h.logSize()).toBe(before);
    },
  );

  it('accepts mute bounds exactly: 1970-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z (also via offsets)', async () => {
    for (const [until, stored] of [
      ['1970-01-01T00:00:00.000Z', '1970-01-01T00:00:00.000Z'],
      ['1970-01-01T01:00:00+01:00', '1970-01-01T00:00:00.000Z'],
      ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
      ['9999-12-31T22:59:59.999-01:00', '9999-12-31T23:59:59.999Z'],
    ]) {
      const res = await h.call('alice', 'PUT', `/v1/conversations/${id}/mute`, { until });
      expect(res.status).toBe(200);
      const [event] = await h.store.readStream('user-alice', { direction: 'backwards', maxCount: 1 });
      expect(event?.data.until).toBe(stored);
    }
  });

  it('keeps a bad command out of the group commit: the good commands queued with it succeed', async () => {
    const before = (await h.stream(`conversation-${id}`)).length;
    const bodies = ['one', 'two', 'three', 'bad\u0000one', 'four', 'five', 'six'];
    const results = await Promise.all(bodies.map((body) => h.send('bob', id, body)));
    expect(results.map((r) => r.status)).toEqual([201, 201, 201, 400, 201, 201, 201]);
    const events = await h.stream(`conversation-${id}`);
    expect(events.slice(before).map((e) => e.data.body)).toEqual([
      'one',
      'two',
      'three',
      'four',
      'five',
      'six',
    ]);
  });

  it('refuses forged notification cursors with 400 (never reaching the database)', async () => {
    const forged = [
      'forged',
      cursorOf(['0000-01-01T00:00:00.000Z', randomUUID()]),
      cursorOf(['2026-01-01T00:00:00.000Z', 'not-a-uuid']),
      cursorOf(['2026-01-01T00:00:00.000Z\u0000', randomUUID()]),
      cursorOf(['1 2', randomUUID()]),
    ];
    for (const cursor of forged) {
      const res = await h.call('alice', 'GET', `/v1/notifications?cursor=${encodeURIComponent(cursor)}`);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatchObject({ code: 'validation_failed', details: [{ path: ['cursor'] }] });
    }
  });

  it('refuses U+0000 and lone surrogates in the other text fields: cursors and admin stream ids', async () => {
    const admin = await signToken('root', { roles: ['admin'] });
    const asAdmin = (url: string) =>
      h.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${admin}` } });
    const nul = await asAdmin('/v1/admin/streams/x%00');
    expect(nul.statusCode).toBe(400);
    expect(nul.json().error).toMatchObject({ code: 'validation_failed', details: [{ path: ['streamId'] }] });
    // A lone surrogate cannot be percent-encoded as UTF-8; %ED%A0%80 is the closest a URL gets to one,
    // and like any malformed percent-encoding it fails before routing, with the same error body.
    for (const url of [`/v1/admin/streams/conversation-${id}%ED%A0%80`, '/v1/conversations/%zz/messages']) {
      const res = await asAdmin(url);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({
        error: {
          code: 'validation_failed',
          message: expect.any(String),
          details: [{ path: [], message: expect.any(String) }],
        },
      });
    }
    for (const cursor of ['a%00', '%ED%B0%80']) {
      const res = await h.call('alice', 'GET', `/v1/conversations?cursor=${cursor}`);
      expect(res.status).toBe(400);
    }
  });
});

describe('direct conversation ids', () => {
  it('cannot be squatted by a group created with that id', async () => {
    const direct = directConversationId('dora', 'eve');
    const squat = await h.call('mallory', 'POST', '/v1/conversations', {
      conversationId: direct,
      kind: 'group',
      members: ['dora', 'eve'],
    });
    expect(squat.status).toBe(400);
    expect(squat.body.error).toMatchObject({
      code: 'validation_failed',
      details: [{ path: ['conversationId'] }],
    });
    const created = await h.call('eve', 'POST', '/v1/conversations', { kind: 'direct', members: ['dora'] });
    expect(created.status).toBe(201);
    expect(created.body.conversationId).toBe(direct);
  });
});

describe('requests refused by the HTTP parser', () => {
  /** One request on its own connection, bytes as given (fastify's inject never reaches Node's parser). */
  const rawExchange = (port: number, request: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = createConnection({ port, host: '127.0.0.1' }, () => socket.write(request));
      let answer = '';
      socket.on('data', (d: Buffer) => {
        answer += d.toString('utf8');
      });
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
    });

  it('answers a URL over 16 KiB and malformed HTTP with the API error body (found by the fuzz suite)', async () => {
    const app = await h.variant({});
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const { port } = app.server.address() as AddressInfo;
      const cases = [
        `GET /v1/unread?pad=${'x'.repeat(17 * 1024)} HTTP/1.1\r\nHost: x\r\n\r\n`,
        'GET /v1/unread HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n',
      ];
      for (const request of cases) {
        const answer = await rawExchange(port, request);
        const [head = '', text = ''] = answer.split('\r\n\r\n');
        expect(head.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
        expect(JSON.parse(text)).toMatchObject({
          error: { code: 'validation_failed', details: [{ path: [] }] },
        });
      }
    } finally {
      await app.close();
    }
  });
});
