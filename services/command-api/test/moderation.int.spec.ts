import { randomUUID } from 'node:crypto';
import { migrateReadModels } from '@chat/db';
import { type ServiceProcess, signToken, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, startProjector } from './harness.js';

// Moderation and blocking over HTTP (issue 16): who may do what (403/404 and nothing appended when
// refused), the events on the right streams with who did it, and the read side through a real
// projector process on the same database.

let h: Harness;
let projector: ServiceProcess;
let adminToken: string;

beforeAll(async () => {
  h = await startHarness('moderation');
  await migrateReadModels(h.pool);
  ({ projector } = await startProjector(h));
  adminToken = await signToken('moderator', { roles: ['admin'] });
}, 60_000);
afterAll(async () => {
  await projector?.stop();
  await h?.close();
});

const asAdmin = (method: 'GET' | 'POST', url: string, body?: unknown) =>
  h.call(null, method, url, body, { authorization: `Bearer ${adminToken}` });

/** A query answer once the read model reached `position` (a busy shared host may need over 2 s). */
const fresh = (user: string | null, url: string, position: string, admin = false) =>
  waitFor(
    async () => {
      const sep = url.includes('?') ? '&' : '?';
      const full = `${url}${sep}minPosition=${position}`;
      const res = admin ? await asAdmin('GET', full) : await h.call(user, 'GET', full);
      return res.headers['x-read-model-stale'] ? false : res;
    },
    { timeoutMs: 30_000, what: `a fresh answer to ${url}` },
  );

/** Calls `attempt` and checks it was refused with `code` and appended nothing. */
type Answer = Awaited<ReturnType<Harness['call']>>;
const refused = async (code: string, attempt: () => Promise<Answer>) => {
  const before = await h.logSize();
  const res = await attempt();
  expect(res.body?.error?.code, JSON.stringify(res.body)).toBe(code);
  expect(await h.logSize()).toBe(before);
  return res;
};

const conversationEvents = async (id: string) => (await h.stream(`conversation-${id}`)).map((e) => e.type);

describe('roles', () => {
  it('the owner makes an admin and back; a member or an admin cannot change roles; roles show in queries', async () => {
    const c = await h.createGroup('alice', ['bob', 'carol']);
    const role = (by: string, userId: string, value: string) =>
      h.call(by, 'PUT', `/v1/conversations/${c}/members/${userId}/role`, { role: value });

    await refused('forbidden', () => role('carol', 'bob', 'admin'));
    const promoted = await role('alice', 'bob', 'admin');
    expect(promoted).toMatchObject({ status: 200, body: { seq: 1, position: expect.any(String) } });
    const [, event] = await h.stream(`conversation-${c}`);
    expect(event).toMatchObject({
      type: 'MemberRoleChanged',
      data: { conversationId: c, userId: 'bob', role: 'admin', changedBy: 'alice' },
      metadata: { userId: 'alice' },
    });
    // Again: the earlier event, nothing appended. An admin cannot promote; the owner's role is fixed.
    const before = await h.logSize();
    expect((await role('alice', 'bob', 'admin')).body).toEqual(promoted.body);
    expect(await h.logSize()).toBe(before);
    await refused('forbidden', () => role('bob', 'carol', 'admin'));
    await refused('conflict', () => role('alice', 'alice', 'member'));
    await refused('not_found', () => role('mallory', 'bob', 'member'));
    await refused('validation_failed', () => role('alice', 'bob', 'owner'));

    const view = await fresh('carol', `/v1/conversations/${c}/moderation`, promoted.body.position);
    expect(view.body).toEqual({
      members: [
        { userId: 'alice', role: 'owner' },
        { userId: 'bob', role: 'admin' },
        { userId: 'carol', role: 'member' },
      ],
      bans: [],
    });
    expect((await h.call('carol', 'GET', `/v1/conversations/${c}`)).body.admins).toEqual(['bob']);
    expect((await h.call('mallory', 'GET', `/v1/conversations/${c}/moderation`)).status).toBe(404);

    const demoted = await role('alice', 'bob', 'member');
    expect(demoted.status).toBe(200);
    const after = await fresh('bob', `/v1/conversations/${c}`, demoted.body.position);
    expect(after.body.admins).toEqual([]);
  });
});

describe('deleting others’ messages and removing members', () => {
  it('a member cannot delete another’s message or remove them; an admin can, and deletedBy shows who', async () => {
    const c = await h.createGroup('alice', ['bob', 'carol', 'dave']);
    await h.call('alice', 'PUT', `/v1/conversations/${c}/members/bob/role`, { role: 'admin' });
    const sent = await h.send('dave', c, 'spam spam spam');
    const messageId = sent.body.messageId as string;
    const del = (by: string) => h.call(by, 'DELETE', `/v1/conversations/${c}/messages/${messageId}`);

    await refused('forbidden', () => del('carol'));
    const deleted = await del('bob');
    expect(deleted.status).toBe(200);
    const page = await fresh('carol', `/v1/conversations/${c}/messages`, deleted.body.position);
    expect(page.body.items.find((m: { messageId: string }) => m.messageId === messageId)).toMatchObject({
      deleted: true,
      body: null,
      deletedBy: 'bob',
    });

    await refused('forbidden', () => h.call('carol', 'DELETE', `/v1/conversations/${c}/members/dave`));
    // An admin cannot remove the owner; removes a member.
    await refused('forbidden', () => h.call('bob', 'DELETE', `/v1/conversations/${c}/members/alice`));
    const removed = await h.call('bob', 'DELETE', `/v1/conversations/${c}/members/dave`);
    expect(removed.status).toBe(200);
    expect((await h.stream(`conversation-${c}`)).at(-1)).toMatchObject({
      type: 'MemberLeft',
      data: { userId: 'dave', removedBy: 'bob' },
    });
  });
});

describe('bans', () => {
  it('a member cannot ban; an admin bans (removed, then banned); a banned user cannot be re-added until unbanned', async () => {
    const c = await h.createGroup('alice', ['bob', 'carol', 'dave']);
    await h.call('alice', 'PUT', `/v1/conversations/${c}/members/bob/role`, { role: 'admin' });
    const ban = (by: string, userId: string) => h.call(by, 'PUT', `/v1/conversations/${c}/bans/${userId}`);
    const unban = (by: string, userId: string) =>
      h.call(by, 'DELETE', `/v1/conversations/${c}/bans/${userId}`);
    const add = (by: string, userId: string) =>
      h.call(by, 'POST', `/v1/conversations/${c}/members`, { userId });

    await refused('forbidden', () => ban('carol', 'dave'));
    await refused('forbidden', () => ban('bob', 'alice'));
    await refused('not_found', () => ban('mallory', 'dave'));

    const banned = await ban('bob', 'dave');
    expect(banned).toMatchObject({ status: 200, body: { seq: 3 } });
    const events = await h.stream(`conversation-${c}`);
    expect(events.slice(2).map((e) => [e.type, e.data])).toEqual([
      ['MemberLeft', { conversationId: c, userId: 'dave', removedBy: 'bob' }],
      ['MemberBanned', { conversationId: c, userId: 'dave', bannedBy: 'bob', at: expect.any(String) }],
    ]);
    expect((await ban('alice', 'dave')).body).toEqual(banned.body);

    // Out: cannot send, and nobody can add them back — the owner neither.
    await refused('not_found', () => h.send('dave', c, 'let me in'));
    await refused('forbidden', () => add('carol', 'dave'));
    await refused('forbidden', () => add('alice', 'dave'));

    // The owner and admins see the ban; members see none.
    const view = await fresh('bob', `/v1/conversations/${c}/moderation`, banned.body.position);
    expect(view.body.bans).toEqual([
      { userId: 'dave', bannedBy: 'bob', bannedAt: expect.any(String), seq: 3 },
    ]);
    expect((await h.call('carol', 'GET', `/v1/conversations/${c}/moderation`)).body.bans).toEqual([]);

    await refused('forbidden', () => unban('carol', 'dave'));
    await refused('not_found', () => unban('bob', 'erin'));
    const lifted = await unban('bob', 'dave');
    expect(lifted).toMatchObject({ status: 200, body: { seq: 4 } });
    expect((await unban('alice', 'dave')).body).toEqual(lifted.body);
    expect((await add('carol', 'dave')).status).toBe(200);
    expect(await conversationEvents(c)).toEqual([
      'ConversationStarted',
      'MemberRoleChanged',
      'MemberLeft',
      'MemberBanned',
      'MemberUnbanned',
      'MemberJoined',
    ]);
    const after = await fresh('bob', `/v1/conversations/${c}/moderation`, lifted.body.position);
    expect(after.body.bans).toEqual([]);
  });

  it('bans a user who is not a member yet, and refuses bans in direct conversations', async () => {
    const c = await h.createGroup('alice', ['bob']);
    expect((await h.call('alice', 'PUT', `/v1/conversations/${c}/bans/troll`)).status).toBe(200);
    await refused('forbidden', () =>
      h.call('bob', 'POST', `/v1/conversations/${c}/members`, { userId: 'troll' }),
    );
    const direct = await h.call('alice', 'POST', '/v1/conversations', { kind: 'direct', members: ['bob'] });
    await refused('conflict', () =>
      h.call('alice', 'PUT', `/v1/conversations/${direct.body.conversationId}/bans/bob`),
    );
  });
});

describe('reports', () => {
  it('members report into the queue; non-members cannot; admins list and resolve; removed deletes the message', async () => {
    const c = await h.createGroup('alice', ['carol', 'troll']);
    const messageId = randomUUID();
    await h.send('troll', c, 'buy now', messageId);
    const report = (by: string, reason: string) =>
      h.call(by, 'POST', `/v1/conversations/${c}/messages/${messageId}/report`, { reason });

    await refused('not_found', () => report('mallory', 'spam'));
    await refused('validation_failed', () => report('carol', '   '));
    const filed = await report('carol', 'spam');
    expect(filed).toMatchObject({
      status: 201,
      body: { reportId: expect.any(String), position: expect.any(String) },
    });
    const { reportId } = filed.body;
    expect(await h.stream(`report-${reportId}`)).toMatchObject([
      {
        type: 'MessageReported',
        data: {
          reportId,
          conversationId: c,
          messageId,
          messageSenderId: 'troll',
          reporterId: 'carol',
          reason: 'spam',
        },
      },
    ]);
    // Off the conversation stream: members' sockets never see who reported.
    expect(await conversationEvents(c)).toEqual(['ConversationStarted', 'MessageSent']);
    expect(await report('carol', 'spam')).toMatchObject({ status: 200, body: filed.body });
    await refused('conflict', () => report('carol', 'abuse'));

    await refused('forbidden', () => h.call('carol', 'GET', '/v1/admin/reports'));
    await refused('forbidden', () =>
      h.call('alice', 'POST', `/v1/admin/reports/${reportId}/resolve`, { action: 'dismissed' }),
    );
    const queue = await fresh(null, '/v1/admin/reports', filed.body.position, true);
    expect(queue.body.items.find((r: { reportId: string }) => r.reportId === reportId)).toEqual({
      reportId,
      conversationId: c,
      messageId,
      messageSenderId: 'troll',
      reporterId: 'carol',
      reason: 'spam',
      reportedAt: expect.any(String),
      status: 'open',
      resolution: null,
    });

    await refused('not_found', () =>
      asAdmin('POST', `/v1/admin/reports/${randomUUID()}/resolve`, { action: 'dismissed' }),
    );
    await refused('validation_failed', () =>
      asAdmin('POST', `/v1/admin/reports/${reportId}/resolve`, { action: 'ban' }),
    );
    const resolved = await asAdmin('POST', `/v1/admin/reports/${reportId}/resolve`, {
      action: 'removed',
      note: 'advertising',
    });
    expect(resolved).toMatchObject({ status: 200, body: { reportId } });
    expect((await h.stream(`conversation-${c}`)).at(-1)).toMatchObject({
      type: 'MessageDeleted',
      data: { messageId, deletedBy: 'moderator' },
    });
    expect(
      await asAdmin('POST', `/v1/admin/reports/${reportId}/resolve`, { action: 'removed' }),
    ).toMatchObject({
      status: 200,
      body: resolved.body,
    });
    await refused('conflict', () =>
      asAdmin('POST', `/v1/admin/reports/${reportId}/resolve`, { action: 'dismissed' }),
    );

    const done = await fresh(null, '/v1/admin/reports?status=resolved', resolved.body.position, true);
    expect(done.body.items.find((r: { reportId: string }) => r.reportId === reportId)).toMatchObject({
      status: 'resolved',
      resolution: { action: 'removed', resolvedBy: 'moderator', note: 'advertising' },
    });
    const open = await asAdmin('GET', '/v1/admin/reports?status=open');
    expect(open.body.items.some((r: { reportId: string }) => r.reportId === reportId)).toBe(false);
    // A deleted message cannot be reported any more.
    await refused('not_found', () => report('alice', 'spam'));
  });

  it('pages the queue newest first with a cursor', async () => {
    const c = await h.createGroup('alice', ['bob']);
    let last = '';
    for (let i = 0; i < 5; i++) {
      const m = randomUUID();
      await h.send('bob', c, `m${i}`, m);
      last = (
        await h.call('alice', 'POST', `/v1/conversations/${c}/messages/${m}/report`, { reason: `r${i}` })
      ).body.position;
    }
    await fresh(null, '/v1/admin/reports', last, true);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 10; pages++) {
      const res: {
        body: { items: { conversationId: string; reason: string }[]; nextCursor: string | null };
      } = await asAdmin('GET', `/v1/admin/reports?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...res.body.items.filter((r) => r.conversationId === c).map((r) => r.reason));
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(['r4', 'r3', 'r2', 'r1', 'r0']);
    await refused('validation_failed', () => asAdmin('GET', '/v1/admin/reports?cursor=forged'));
  });
});

describe('blocking', () => {
  it('a blocked user cannot start or write to a direct conversation with the blocker (403, no block named)', async () => {
    const direct = await h.call('mallory', 'POST', '/v1/conversations', { kind: 'direct', members: ['ann'] });
    const dm = direct.body.conversationId as string;
    expect((await h.send('mallory', dm, 'hi')).status).toBe(201);

    const blocked = await h.call('ann', 'PUT', '/v1/users/me/blocks/mallory');
    expect(blocked).toMatchObject({ status: 200, body: { position: expect.any(String) } });
    expect((await h.stream('user-ann')).at(-1)).toMatchObject({
      type: 'UserBlocked',
      data: { userId: 'ann', blockedUserId: 'mallory' },
    });
    expect(await h.call('ann', 'PUT', '/v1/users/me/blocks/mallory')).toMatchObject({
      status: 200,
      body: blocked.body,
    });

    const refusal = await refused('forbidden', () => h.send('mallory', dm, 'hello again'));
    expect(refusal.body.error.message).toBe('you cannot message this user');
    await refused('forbidden', () =>
      h.call('mallory', 'POST', '/v1/conversations', { kind: 'direct', members: ['ann'] }),
    );
    // The blocker still writes; others are not affected; the blocked one still writes elsewhere.
    expect((await h.send('ann', dm, 'bye')).status).toBe(201);
    const other = await h.call('mallory', 'POST', '/v1/conversations', { kind: 'direct', members: ['bea'] });
    expect(other.status).toBe(201);
    expect((await h.send('mallory', other.body.conversationId, 'hi bea')).status).toBe(201);
    // In a group both are in, the block stops nothing (clients hide; see DESIGN.md).
    const g = await h.createGroup('bea', ['ann', 'mallory']);
    expect((await h.send('mallory', g, 'hello group')).status).toBe(201);

    const list = await fresh('ann', '/v1/users/me/blocks', blocked.body.position);
    expect(list.body).toEqual({ items: [{ userId: 'mallory', blockedAt: expect.any(String) }] });
    expect((await h.call('mallory', 'GET', '/v1/users/me/blocks')).body).toEqual({ items: [] });

    const unblocked = await h.call('ann', 'DELETE', '/v1/users/me/blocks/mallory');
    expect(unblocked.status).toBe(200);
    expect((await h.send('mallory', dm, 'sorry')).status).toBe(201);
    expect((await fresh('ann', '/v1/users/me/blocks', unblocked.body.position)).body).toEqual({ items: [] });
  });

  it('a block written through another command-api instance stops the next direct message here', async () => {
    const other = await h.variant({});
    try {
      const direct = await h.call('kim', 'POST', '/v1/conversations', { kind: 'direct', members: ['lou'] });
      const dm = direct.body.conversationId as string;
      // lou's stream exists (only existing aggregates are cached) and this instance has checked and
      // cached it: no block of kim.
      expect((await h.call('lou', 'PUT', '/v1/users/me/blocks/someone-else')).status).toBe(200);
      expect((await h.send('kim', dm, 'hi')).status).toBe(201);
      const blocked = await other.inject({
        method: 'PUT',
        url: '/v1/users/me/blocks/kim',
        headers: { authorization: `Bearer ${await h.tokenFor('lou')}` },
      });
      expect(blocked.statusCode).toBe(200);
      await refused('forbidden', () => h.send('kim', dm, 'still there?'));
    } finally {
      await other.close();
    }
  });

  it('refuses blocking yourself (400) and unblocking someone never blocked (404)', async () => {
    await refused('validation_failed', () => h.call('ann', 'PUT', '/v1/users/me/blocks/ann'));
    await refused('not_found', () => h.call('ann', 'DELETE', '/v1/users/me/blocks/nobody'));
    await refused('validation_failed', () => h.call('ann', 'PUT', '/v1/users/me/blocks/bad%20id'));
  });

  it('does not reveal presence across a block, either way', async () => {
    const direct = await h.call('pia', 'POST', '/v1/conversations', { kind: 'direct', members: ['quin'] });
    const status = async (asker: string, about: string, position: string) =>
      (await fresh(asker, `/v1/presence?userIds=${about}`, position)).body.users[0].status;
    expect(await status('quin', 'pia', direct.body.position)).toBe('offline');
    const blocked = await h.call('pia', 'PUT', '/v1/users/me/blocks/quin');
    expect(await status('quin', 'pia', blocked.body.position)).toBe('unknown');
    expect(await status('pia', 'quin', blocked.body.position)).toBe('unknown');
  });
});
