import { randomUUID } from 'node:crypto';
import type { CommandReply } from '@chat/events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

// PUT/DELETE /v1/conversations/{id}/messages/{messageId}/reactions/{reaction} (API.md §2.2.1, v1.1).

let h: Harness;
let group: string;
let message: { messageId: string; seq: number; position: string };
beforeAll(async () => {
  h = await startHarness('reactions');
  group = await h.createGroup('alice', ['bob', 'carol']);
  message = (await h.send('alice', group, 'react to me')).body;
});
afterAll(() => h?.close());

const POSITION = /^[0-9a-f]{32}$/;
const url = (reaction: string, messageId = message.messageId, conversationId = group) =>
  `/v1/conversations/${conversationId}/messages/${messageId}/reactions/${encodeURIComponent(reaction)}`;
const events = async () =>
  (await h.stream(`conversation-${group}`)).filter((e) => e.type.startsWith('Reaction'));

describe('reactions', () => {
  it('PUT reacts: 200 {seq, position}; a ReactionAdded on the conversation stream names the author', async () => {
    const res = await h.call('bob', 'PUT', url('👍'));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ seq: expect.any(Number), position: expect.stringMatching(POSITION) });
    const [event] = await events();
    expect(event).toMatchObject({
      type: 'ReactionAdded',
      revision: res.body.seq,
      position: res.body.position,
      data: {
        conversationId: group,
        messageId: message.messageId,
        userId: 'bob',
        reaction: '👍',
        at: expect.any(String),
        messageSenderId: 'alice',
      },
      metadata: { userId: 'bob' },
    });
  });

  it('answers a repeat with the earlier seq and position and appends nothing; DELETE likewise', async () => {
    const first = await h.call('carol', 'PUT', url('thumbsup'));
    await h.send('alice', group, 'in between');
    const before = await h.logSize();
    expect(await h.call('carol', 'PUT', url('thumbsup'))).toMatchObject({ status: 200, body: first.body });
    expect(await h.logSize()).toBe(before);

    const removed = await h.call('carol', 'DELETE', url('thumbsup'));
    expect(removed.status).toBe(200);
    expect(removed.body.seq).toBeGreaterThan(first.body.seq);
    expect((await events()).at(-1)).toMatchObject({
      type: 'ReactionRemoved',
      revision: removed.body.seq,
      data: { userId: 'carol', reaction: 'thumbsup', messageId: message.messageId },
    });
    const size = await h.logSize();
    expect(await h.call('carol', 'DELETE', url('thumbsup'))).toMatchObject({
      status: 200,
      body: removed.body,
    });
    // Never added: the message itself is where the caller had no reaction.
    expect(await h.call('carol', 'DELETE', url('🙈'))).toMatchObject({
      status: 200,
      body: { seq: message.seq, position: message.position },
    });
    expect(await h.logSize()).toBe(size);
    const again = await h.call('carol', 'PUT', url('thumbsup'));
    expect(again.body.seq).toBeGreaterThan(removed.body.seq);
  });

  it('takes any reaction of 1..32 code points without whitespace, percent-encoded in the path', async () => {
    for (const reaction of ['👨‍👩‍👧‍👦', '😀'.repeat(32), '+1', 'a/b', 'ça']) {
      const res = await h.call('bob', 'PUT', url(reaction));
      expect(res.status, reaction).toBe(200);
      expect((await events()).at(-1)?.data.reaction).toBe(reaction);
    }
  });

  it('refuses a bad reaction or id with 400 before anything else; nothing appended', async () => {
    const before = await h.logSize();
    const bad = [
      url('x'.repeat(33)),
      url('😀'.repeat(33)),
      url('thumbs up'),
      url('tab\there'),
      url('a\u0000'),
      `/v1/conversations/${group}/messages/${message.messageId}/reactions/%ED%A0%80`,
      `/v1/conversations/${group}/messages/not-a-uuid/reactions/x`,
      `/v1/conversations/nope/messages/${message.messageId}/reactions/x`,
    ];
    for (const path of bad) {
      const res = await h.call('mallory', 'PUT', path);
      expect(res.status, path).toBe(400);
      expect(res.body.error.code, path).toBe('validation_failed');
    }
    const empty = await h.call(
      'bob',
      'PUT',
      `/v1/conversations/${group}/messages/${message.messageId}/reactions/`,
    );
    expect(empty.status).toBeGreaterThanOrEqual(400);
    expect(empty.status).toBeLessThan(500);
    expect(await h.logSize()).toBe(before);
  });

  it('is 404 for an unknown or deleted message, a non-member and an unknown conversation', async () => {
    const gone = (await h.send('alice', group, 'to be deleted')).body;
    await h.call('bob', 'PUT', url('👍', gone.messageId));
    expect(
      (await h.call('alice', 'DELETE', `/v1/conversations/${group}/messages/${gone.messageId}`)).status,
    ).toBe(200);
    const before = await h.logSize();
    for (const method of ['PUT', 'DELETE'] as const) {
      for (const [userId, path] of [
        ['bob', url('👍', randomUUID())],
        ['bob', url('👍', gone.messageId)],
        ['mallory', url('👍')],
        ['bob', url('👍', message.messageId, randomUUID())],
      ] as const) {
        const res = await h.call(userId, method, path);
        expect(res.status, `${method} ${path}`).toBe(404);
        expect(res.body.error.code).toBe('not_found');
      }
    }
    expect(await h.logSize()).toBe(before);
  });

  it('is served over NATS with the same answers', async () => {
    const request = async (name: string, userId: string, reaction: string): Promise<CommandReply> => {
      const payload = JSON.stringify({
        userId,
        params: { conversationId: group, messageId: message.messageId, reaction },
        body: {},
      });
      const msg = await h.nats.request(`${h.prefix}.cmd.${name}`, new TextEncoder().encode(payload), {
        timeout: 5000,
      });
      return JSON.parse(new TextDecoder().decode(msg.data)) as CommandReply;
    };
    const added = await request('addReaction', 'carol', '🎉');
    expect(added).toEqual({
      ok: true,
      status: 200,
      result: { seq: expect.any(Number), position: expect.stringMatching(POSITION) },
    });
    expect(await request('addReaction', 'carol', '🎉')).toEqual(added);
    expect(await request('removeReaction', 'carol', '🎉')).toMatchObject({ ok: true, status: 200 });
    expect(await request('addReaction', 'mallory', '🎉')).toMatchObject({ ok: false, status: 404 });
    expect(await request('addReaction', 'carol', 'no spaces')).toMatchObject({
      ok: false,
      status: 400,
      error: { code: 'validation_failed', details: [{ path: ['params', 'reaction'] }] },
    });
  });
});
