import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { directConversationId } from '../src/commands/ids.js';
import { type Harness, startHarness } from './harness.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const POSITION = /^[0-9a-f]{32}$/;

let h: Harness;
beforeAll(async () => {
  h = await startHarness('conversations');
});
afterAll(() => h?.close());

describe('POST /v1/conversations', () => {
  it('starts a group: 201, the caller first, duplicates ignored, one ConversationStarted', async () => {
    const res = await h.call('alice', 'POST', '/v1/conversations', {
      kind: 'group',
      members: ['bob', 'alice', 'carol', 'bob'],
      title: '  Team  ',
    });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      conversationId: expect.stringMatching(UUID),
      seq: 0,
      position: expect.stringMatching(POSITION),
    });
    const events = await h.stream(`conversation-${res.body.conversationId}`);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'ConversationStarted',
      revision: 0,
      position: res.body.position,
      data: {
        conversationId: res.body.conversationId,
        kind: 'group',
        title: 'Team',
        createdBy: 'alice',
        members: ['alice', 'bob', 'carol'],
      },
      metadata: { userId: 'alice', correlationId: expect.stringMatching(UUID), schemaVersion: 1 },
    });
  });

  it('carries the client correlation id into event metadata', async () => {
    const correlationId = randomUUID();
    const res = await h.call(
      'alice',
      'POST',
      '/v1/conversations',
      { kind: 'group', members: ['bob'] },
      {
        'x-correlation-id': correlationId,
      },
    );
    const [event] = await h.stream(`conversation-${res.body.conversationId}`);
    expect(event?.metadata.correlationId).toBe(correlationId);
  });

  it('is idempotent with a given id (any letter case, member order ignored) and 409 on other content', async () => {
    const id = randomUUID();
    const first = await h.call('alice', 'POST', '/v1/conversations', {
      conversationId: id.toUpperCase(),
      kind: 'group',
      members: ['bob', 'carol'],
      title: 'T',
    });
    expect(first.status).toBe(201);
    expect(first.body.conversationId).toBe(id);
    const before = await h.logSize();
    const again = await h.call('alice', 'POST', '/v1/conversations', {
      conversationId: id,
      kind: 'group',
      members: ['carol', 'bob', 'alice'],
      title: 'T',
    });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    const other = await h.call('alice', 'POST', '/v1/conversations', {
      conversationId: id,
      kind: 'group',
      members: ['carol'],
      title: 'T',
    });
    expect(other.status).toBe(409);
    expect(other.body.error.code).toBe('conflict');
    const retitled = await h.call('alice', 'POST', '/v1/conversations', {
      conversationId: id,
      kind: 'group',
      members: ['carol', 'bob'],
      title: 'U',
    });
    expect(retitled.status).toBe(409);
    expect(await h.logSize()).toBe(before);
  });

  it('derives a direct conversation id from the pair; either user re-creating it gets 200 and the same id', async () => {
    const first = await h.call('dan', 'POST', '/v1/conversations', { kind: 'direct', members: ['erin'] });
    expect(first.status).toBe(201);
    expect(first.body.conversationId).toBe(directConversationId('erin', 'dan'));
    const before = await h.logSize();
    const byOther = await h.call('erin', 'POST', '/v1/conversations', {
      kind: 'direct',
      members: ['dan', 'erin'],
    });
    expect(byOther.status).toBe(200);
    expect(byOther.body).toEqual(first.body);
    const again = await h.call('dan', 'POST', '/v1/conversations', { kind: 'direct', members: ['erin'] });
    expect(again.status).toBe(200);
    expect(await h.logSize()).toBe(before);
    const events = await h.stream(`conversation-${first.body.conversationId}`);
    expect(events.map((e) => e.type)).toEqual(['ConversationStarted']);
    expect(events[0]?.data).toMatchObject({ kind: 'direct', title: null, members: ['dan', 'erin'] });
  });

  it('refuses direct conversations without exactly one other member or with a title, and empty groups (400)', async () => {
    const before = await h.logSize();
    const cases = [
      { kind: 'direct', members: ['x', 'y'] },
      { kind: 'direct', members: ['alice'] },
      { kind: 'direct', members: ['x'], title: 'no' },
      { kind: 'group', members: ['alice'] },
      { kind: 'group', members: [] },
    ];
    for (const body of cases) {
      const res = await h.call('alice', 'POST', '/v1/conversations', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(res.body.error.details[0].path).toEqual(expect.any(Array));
    }
    expect(await h.logSize()).toBe(before);
  });

  it('accepts 999 other members and refuses 1,000', async () => {
    const members = Array.from({ length: 999 }, (_, i) => `member-${i}`);
    const ok = await h.call('alice', 'POST', '/v1/conversations', { kind: 'group', members });
    expect(ok.status).toBe(201);
    const tooMany = await h.call('alice', 'POST', '/v1/conversations', {
      kind: 'group',
      members: [...members, 'member-999'],
    });
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.code).toBe('validation_failed');
  });
});

describe('POST /v1/conversations/{id}/members', () => {
  it('lets any member add someone: 200 {seq, position}, one MemberJoined', async () => {
    const id = await h.createGroup('alice', ['bob']);
    const res = await h.call('bob', 'POST', `/v1/conversations/${id}/members`, { userId: 'carol' });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ seq: 1, position: expect.stringMatching(POSITION) });
    const events = await h.stream(`conversation-${id}`);
    expect(events[1]).toMatchObject({
      type: 'MemberJoined',
      revision: 1,
      position: res.body.position,
      data: { conversationId: id, userId: 'carol', addedBy: 'bob' },
    });
  });

  it('answers an existing member with the earlier join seq and appends nothing', async () => {
    const id = await h.createGroup('alice', ['bob']);
    const joined = await h.call('alice', 'POST', `/v1/conversations/${id}/members`, { userId: 'carol' });
    await h.send('alice', id);
    const before = await h.logSize();
    const again = await h.call('bob', 'POST', `/v1/conversations/${id}/members`, { userId: 'carol' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(joined.body);
    const initial = await h.call('bob', 'POST', `/v1/conversations/${id}/members`, { userId: 'alice' });
    expect(initial.status).toBe(200);
    expect(initial.body.seq).toBe(0);
    expect(await h.logSize()).toBe(before);
  });

  it('refuses direct conversations with 409 and hides from non-members (404)', async () => {
    const direct = await h.call('fay', 'POST', '/v1/conversations', { kind: 'direct', members: ['gus'] });
    const before = await h.logSize();
    const res = await h.call('fay', 'POST', `/v1/conversations/${direct.body.conversationId}/members`, {
      userId: 'hal',
    });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('conflict');
    const stranger = await h.call(
      'mallory',
      'POST',
      `/v1/conversations/${direct.body.conversationId}/members`,
      {
        userId: 'mallory',
      },
    );
    expect(stranger.status).toBe(404);
    const unknown = await h.call('fay', 'POST', `/v1/conversations/${randomUUID()}/members`, {
      userId: 'hal',
    });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    expect(await h.logSize()).toBe(before);
  });
});

describe('DELETE /v1/conversations/{id}/members/{userId}', () => {
  it('lets a member remove themself and the creator remove others', async () => {
    const id = await h.createGroup('alice', ['bob', 'carol']);
    const self = await h.call('bob', 'DELETE', `/v1/conversations/${id}/members/bob`);
    expect(self.status).toBe(200);
    expect(self.body).toEqual({ seq: 1, position: expect.stringMatching(POSITION) });
    const byCreator = await h.call('alice', 'DELETE', `/v1/conversations/${id}/members/carol`);
    expect(byCreator.status).toBe(200);
    expect(byCreator.body.seq).toBe(2);
    const events = await h.stream(`conversation-${id}`);
    expect(events.slice(1).map((e) => [e.type, e.data.userId, e.data.removedBy])).toEqual([
      ['MemberLeft', 'bob', 'bob'],
      ['MemberLeft', 'carol', 'alice'],
    ]);
    const gone = await h.send('bob', id);
    expect(gone.status).toBe(404);
  });

  it('forbids others (403) but answers 404 for a non-member target first; nothing appended', async () => {
    const id = await h.createGroup('alice', ['bob', 'carol']);
    const before = await h.logSize();
    const forbidden = await h.call('bob', 'DELETE', `/v1/conversations/${id}/members/carol`);
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('forbidden');
    const notMember = await h.call('bob', 'DELETE', `/v1/conversations/${id}/members/zed`);
    expect(notMember.status).toBe(404);
    const stranger = await h.call('mallory', 'DELETE', `/v1/conversations/${id}/members/mallory`);
    expect(stranger.status).toBe(404);
    expect(await h.logSize()).toBe(before);
  });
});
