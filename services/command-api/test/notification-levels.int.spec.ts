import { randomUUID } from 'node:crypto';
import type { CommandReply } from '@chat/events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './harness.js';

// PUT /v1/conversations/{id}/notifications (API.md §2.3, v1.1), decided on the user's own stream.

let h: Harness;
let group: string;
beforeAll(async () => {
  h = await startHarness('levels');
  group = await h.createGroup('alice', ['bob']);
});
afterAll(() => h?.close());

const POSITION = /^[0-9a-f]{32}$/;
const url = (conversationId: string) => `/v1/conversations/${conversationId}/notifications`;
const levelEvents = async (userId: string) =>
  (await h.stream(`user-${userId}`)).filter((e) => e.type === 'NotificationLevelSet');

describe('PUT /v1/conversations/{id}/notifications', () => {
  it('sets the level: 200 {position}, one NotificationLevelSet on the user stream', async () => {
    const res = await h.call('bob', 'PUT', url(group), { level: 'none' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ position: expect.stringMatching(POSITION) });
    const [event] = await levelEvents('bob');
    expect(event).toMatchObject({
      type: 'NotificationLevelSet',
      position: res.body.position,
      data: { conversationId: group, userId: 'bob', level: 'none' },
      metadata: { userId: 'bob', schemaVersion: 1 },
    });
  });

  it('answers setting the current level again with the earlier position and appends nothing', async () => {
    const first = await h.call('alice', 'PUT', url(group), { level: 'all' });
    await h.call('alice', 'PUT', `/v1/conversations/${group}/mute`, { until: null });
    const before = await h.logSize();
    const again = await h.call('alice', 'PUT', url(group), { level: 'all' });
    expect(again).toMatchObject({ status: 200, body: { position: first.body.position } });
    expect(await h.logSize()).toBe(before);
    // A change appends; so does going back to a level set earlier.
    const changed = await h.call('alice', 'PUT', url(group), { level: 'mentions' });
    const back = await h.call('alice', 'PUT', url(group), { level: 'all' });
    expect(new Set([first.body.position, changed.body.position, back.body.position]).size).toBe(3);
    expect((await levelEvents('alice')).map((e) => e.data.level)).toEqual(['all', 'mentions', 'all']);
  });

  it('appends the default the first time it is set explicitly (there is no earlier position)', async () => {
    const direct = await h.call('carol', 'POST', '/v1/conversations', { kind: 'direct', members: ['dave'] });
    const res = await h.call('carol', 'PUT', url(direct.body.conversationId), { level: 'all' });
    expect(res.status).toBe(200);
    expect(await levelEvents('carol')).toHaveLength(1);
  });

  it('is 404 for non-members and unknown conversations, before anything else; nothing appended', async () => {
    const before = await h.logSize();
    expect((await h.call('mallory', 'PUT', url(group), { level: 'all' })).body.error.code).toBe('not_found');
    expect((await h.call('bob', 'PUT', url(randomUUID()), { level: 'all' })).status).toBe(404);
    await h.call('alice', 'POST', `/v1/conversations/${group}/members`, { userId: 'erin' });
    await h.call('erin', 'DELETE', `/v1/conversations/${group}/members/erin`);
    const size = await h.logSize();
    expect((await h.call('erin', 'PUT', url(group), { level: 'none' })).status).toBe(404);
    expect(await h.logSize()).toBe(size);
    expect(size).toBe(before + 2);
  });

  it('validates the body and the path (400 before membership)', async () => {
    const before = await h.logSize();
    for (const body of [{ level: 'loud' }, {}, { level: 'all', extra: 1 }, { level: null }, 'all']) {
      const res = await h.call('mallory', 'PUT', url(group), body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
    }
    expect((await h.call('bob', 'PUT', url('not-a-uuid'), { level: 'all' })).status).toBe(400);
    expect(await h.logSize()).toBe(before);
  });

  it('is served over NATS with the same answers', async () => {
    const request = async (userId: string, level: string): Promise<CommandReply> => {
      const payload = JSON.stringify({ userId, params: { conversationId: group }, body: { level } });
      const msg = await h.nats.request(
        `${h.prefix}.cmd.setNotificationLevel`,
        new TextEncoder().encode(payload),
        {
          timeout: 5000,
        },
      );
      return JSON.parse(new TextDecoder().decode(msg.data)) as CommandReply;
    };
    const set = await request('bob', 'mentions');
    expect(set).toEqual({ ok: true, status: 200, result: { position: expect.stringMatching(POSITION) } });
    expect(await request('bob', 'mentions')).toEqual(set);
    expect(await request('mallory', 'mentions')).toMatchObject({ ok: false, status: 404 });
    expect(await request('bob', 'loud')).toMatchObject({ ok: false, status: 400 });
  });

  it('two instances setting the same level at once append it once and answer the same position', async () => {
    const other = await h.variant({});
    try {
      const c = await h.createGroup('frank', ['gina']);
      // Both instances cache frank's stream, then race.
      await h.call('frank', 'PUT', url(c), { level: 'none' });
      await other.inject({
        method: 'PUT',
        url: url(c),
        headers: { authorization: `Bearer ${await h.tokenFor('frank')}` },
        payload: { level: 'none' },
      });
      const results = await Promise.all([
        h.call('frank', 'PUT', url(c), { level: 'all' }),
        other
          .inject({
            method: 'PUT',
            url: url(c),
            headers: { authorization: `Bearer ${await h.tokenFor('frank')}` },
            payload: { level: 'all' },
          })
          .then((r) => ({ status: r.statusCode, body: r.json() })),
      ]);
      expect(results.map((r) => r.status)).toEqual([200, 200]);
      expect(results[0]?.body.position).toBe(results[1]?.body.position);
      expect((await levelEvents('frank')).map((e) => e.data.level)).toEqual(['none', 'all']);
    } finally {
      await other.close();
    }
  });
});
