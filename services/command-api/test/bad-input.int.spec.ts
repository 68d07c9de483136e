import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
let id: string;
let messageId: string;
beforeAll(async () => {
  h = await startHarness('badinput');
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
