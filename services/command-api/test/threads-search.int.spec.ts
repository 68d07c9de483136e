import { randomUUID } from 'node:crypto';
import { migrateReadModels } from '@chat/db';
import { type ServiceProcess, waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness, startProjector } from './harness.js';

// Issue 16: threads (SendMessage with threadRootId, GET …/threads/{rootId}/messages, includeThreads) and
// search (GET /v1/search), against read models kept by a real projector process on the same database.

let h: Harness;
let projector: ServiceProcess;

beforeAll(async () => {
  h = await startHarness('threads-search');
  await migrateReadModels(h.pool);
  ({ projector } = await startProjector(h));
}, 60_000);

afterAll(async () => {
  await projector?.stop();
  await h?.close();
});

/** GET as `user`, once the read model has reached `position` (retried while marked stale). */
const read = (user: string, url: string, position: string) =>
  waitFor(
    async () => {
      const sep = url.includes('?') ? '&' : '?';
      const res = await h.call(user, 'GET', `${url}${sep}minPosition=${position}`);
      return res.headers['x-read-model-stale'] ? false : res;
    },
    { timeoutMs: 30_000, what: `a fresh answer to ${url}` },
  );

const reply = (user: string, conversationId: string, threadRootId: string, body = 'in thread', extra = {}) =>
  h.call(user, 'POST', `/v1/conversations/${conversationId}/messages`, {
    messageId: randomUUID(),
    body,
    threadRootId,
    ...extra,
  });

describe('threads', () => {
  it('a reply names its root; MessageSent carries threadRootId and the participants so far', async () => {
    const c = await h.createGroup('alice', ['bob', 'carol']);
    const root = await h.send('alice', c, 'root');
    const first = await reply('bob', c, root.body.messageId);
    expect(first.status).toBe(201);
    const second = await reply('carol', c, root.body.messageId);
    const events = (await h.stream(`conversation-${c}`)).filter((e) => e.type === 'MessageSent');
    expect(events.at(-2)?.data).toMatchObject({
      threadRootId: root.body.messageId,
      threadParticipantIds: ['alice'],
    });
    expect(events.at(-1)).toMatchObject({
      revision: second.body.seq,
      data: { threadRootId: root.body.messageId, threadParticipantIds: ['alice', 'bob'] },
    });
  });

  it('refuses a bad root and changes nothing: unknown or a reply → 400, deleted → 404, non-member → 404', async () => {
    const c = await h.createGroup('alice', ['bob']);
    const root = await h.send('alice', c, 'root');
    const inThread = await reply('bob', c, root.body.messageId);
    const gone = await h.send('alice', c, 'gone');
    await h.call('alice', 'DELETE', `/v1/conversations/${c}/messages/${gone.body.messageId}`);
    const before = await h.logSize();
    const unknown = await reply('bob', c, randomUUID());
    expect(unknown).toMatchObject({ status: 400, body: { error: { code: 'validation_failed' } } });
    expect(unknown.body.error.details).toEqual([{ path: ['threadRootId'], message: expect.any(String) }]);
    expect(await reply('bob', c, inThread.body.messageId)).toMatchObject({
      status: 400,
      body: { error: { code: 'validation_failed', details: [{ path: ['threadRootId'] }] } },
    });
    expect(await reply('bob', c, gone.body.messageId)).toMatchObject({
      status: 404,
      body: { error: { code: 'not_found' } },
    });
    expect(await reply('mallory', c, root.body.messageId)).toMatchObject({ status: 404 });
    expect(await reply('bob', c, 'not-a-uuid')).toMatchObject({ status: 400 });
    expect(await h.logSize()).toBe(before);
  });

  it('pages a thread like history; the root shows replyCount, lastReplyAt and the 3 latest repliers', async () => {
    const c = await h.createGroup('alice', ['bob', 'carol', 'dan']);
    const root = await h.send('alice', c, 'root');
    const other = await h.send('alice', c, 'other root');
    const replies = [];
    for (const user of ['bob', 'carol', 'dan', 'bob', 'alice'])
      replies.push(await reply(user, c, root.body.messageId));
    await reply('bob', c, other.body.messageId);
    const last = await h.send('carol', c, 'main timeline again');
    const url = `/v1/conversations/${c}/threads/${root.body.messageId}/messages`;
    const page = await read('dan', `${url}?limit=2`, last.body.position);
    expect(page.status).toBe(200);
    expect(page.body.root).toMatchObject({
      messageId: root.body.messageId,
      threadRootId: null,
      replyCount: 5,
      lastReplyAt: replies[4]?.body.sentAt,
      threadParticipantIds: ['alice', 'bob', 'dan'],
    });
    expect(page.body.items.map((m: { seq: number }) => m.seq)).toEqual([
      replies[3]?.body.seq,
      replies[4]?.body.seq,
    ]);
    expect(page.body.hasMore).toBe(true);
    const older = await h.call('dan', 'GET', `${url}?before=${replies[3]?.body.seq}&limit=10`);
    expect(older.body.items.map((m: { seq: number }) => m.seq)).toEqual(
      replies.slice(0, 3).map((r) => r.body.seq),
    );
    expect(older.body.items[0]).toMatchObject({ threadRootId: root.body.messageId, replyCount: 0 });
    const forwards = await h.call('dan', 'GET', `${url}?after=${replies[2]?.body.seq}&limit=1`);
    expect(forwards.body).toMatchObject({ items: [{ seq: replies[3]?.body.seq }], hasMore: true });

    // The main timeline: every message by default (old clients see everything); includeThreads=false omits replies.
    const all = await h.call('dan', 'GET', `/v1/conversations/${c}/messages?limit=200`);
    expect(all.body.items).toHaveLength(9);
    const main = await h.call('dan', 'GET', `/v1/conversations/${c}/messages?limit=200&includeThreads=false`);
    expect(main.body.items.map((m: { body: string }) => m.body)).toEqual([
      'root',
      'other root',
      'main timeline again',
    ]);
  });

  it('404 for non-members, an unknown root or a reply as root; 400 for bad paging', async () => {
    const c = await h.createGroup('alice', ['bob']);
    const root = await h.send('alice', c, 'root');
    const r = await reply('bob', c, root.body.messageId);
    const url = (id: string) => `/v1/conversations/${c}/threads/${id}/messages`;
    await read('bob', url(root.body.messageId), r.body.position);
    expect(await h.call('mallory', 'GET', url(root.body.messageId))).toMatchObject({ status: 404 });
    expect(await h.call('bob', 'GET', url(randomUUID()))).toMatchObject({ status: 404 });
    expect(await h.call('bob', 'GET', url(r.body.messageId))).toMatchObject({ status: 404 });
    for (const q of ['before=1&after=2', 'limit=0', 'limit=201', 'after=-1', 'nope=1', 'minPosition=xyz']) {
      expect(await h.call('bob', 'GET', `${url(root.body.messageId)}?${q}`), q).toMatchObject({
        status: 400,
        body: { error: { code: 'validation_failed' } },
      });
    }
    expect(await h.call('bob', 'GET', `/v1/conversations/${c}/threads/nope/messages`)).toMatchObject({
      status: 400,
    });
    expect(await h.call('bob', 'GET', `/v1/conversations/${c}/messages?includeThreads=maybe`)).toMatchObject({
      status: 400,
    });
    expect(await h.call(null, 'GET', url(root.body.messageId))).toMatchObject({ status: 401 });
  });
});

describe('search', () => {
  let c: string;
  let secret: string;
  let last: string;
  beforeAll(async () => {
    c = await h.createGroup('sam', ['tess']);
    secret = await h.createGroup('mallory', ['eve']);
    await h.send('sam', c, 'the quokka lives on Rottnest island');
    await h.send('tess', c, 'a quokka quokka quokka selfie');
    await h.send('tess', c, 'x < y && <img src=x onerror=alert(1)> "quokka" it\'s');
    const gone = await h.send('sam', c, 'deleted quokka message');
    await h.call('sam', 'DELETE', `/v1/conversations/${c}/messages/${gone.body.messageId}`);
    const edited = await h.send('sam', c, 'wombat before the edit');
    await h.call('sam', 'PATCH', `/v1/conversations/${c}/messages/${edited.body.messageId}`, {
      body: 'numbat after',
    });
    const hidden = await h.send('mallory', secret, 'quokka secret plans');
    last = hidden.body.position;
  });

  it('finds a member’s messages, ranked, with HTML-safe snippets marking the matches', async () => {
    const res = await read('tess', '/v1/search?q=quokka', last);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(3);
    expect(res.body.items[0]).toMatchObject({ conversationId: c, senderId: 'tess', threadRootId: null });
    expect(res.body.items[0].snippet).toBe(
      'a <mark>quokka</mark> <mark>quokka</mark> <mark>quokka</mark> selfie',
    );
    const ranks = res.body.items.map((i: { rank: number }) => i.rank);
    expect([...ranks].sort((a, b) => b - a)).toEqual(ranks);
    const html = res.body.items.find((i: { snippet: string }) => i.snippet.includes('img'))?.snippet;
    expect(html).toBe(
      'x &lt; y &amp;&amp; &lt;img src=x onerror=alert(1)&gt; &quot;<mark>quokka</mark>&quot; it&#39;s',
    );
    expect(res.body.nextCursor).toBeNull();
  });

  it('finds nothing deleted, the new body of an edit and not the old one', async () => {
    expect((await read('sam', '/v1/search?q=deleted', last)).body.items).toEqual([]);
    expect((await h.call('sam', 'GET', '/v1/search?q=wombat')).body.items).toEqual([]);
    expect((await h.call('sam', 'GET', '/v1/search?q=numbat')).body.items).toHaveLength(1);
  });

  it('a non-member finds nothing, also naming the conversation; from and conversationId filter', async () => {
    expect(
      (await read('eve', '/v1/search?q=quokka', last)).body.items.map(
        (i: { conversationId: string }) => i.conversationId,
      ),
    ).toEqual([secret]);
    expect((await h.call('eve', 'GET', `/v1/search?q=quokka&conversationId=${c}`)).body).toEqual({
      items: [],
      nextCursor: null,
    });
    expect((await h.call('tess', 'GET', `/v1/search?q=quokka&conversationId=${secret}`)).body.items).toEqual(
      [],
    );
    expect((await h.call('tess', 'GET', '/v1/search?q=quokka&from=sam')).body.items).toHaveLength(1);
    expect((await h.call('tess', 'GET', '/v1/search?q=plans')).body.items).toEqual([]);
  });

  it('pages with the cursor: every match once, in rank order', async () => {
    const all = (await read('tess', '/v1/search?q=quokka&limit=50', last)).body.items;
    const paged = [];
    let cursor: string | null = null;
    for (let i = 0; i < 10; i++) {
      const res: { body: { items: unknown[]; nextCursor: string | null } } = await h.call(
        'tess',
        'GET',
        `/v1/search?q=quokka&limit=1${cursor ? `&cursor=${cursor}` : ''}`,
      );
      paged.push(...res.body.items);
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    expect(paged).toEqual(all);
  });

  it('400 for a bad q, cursor or limit; 401 without a token', async () => {
    for (const q of [
      'q=',
      'q=%20%20',
      'q=%22%20-',
      `q=${'a'.repeat(201)}`,
      'q=a%00b',
      'q=a&limit=0',
      'q=a&limit=51',
      'q=a&cursor=Zm9v',
      'q=a&conversationId=x',
      'q=a&from=%20',
      '',
    ]) {
      expect(await h.call('tess', 'GET', `/v1/search?${q}`), q).toMatchObject({
        status: 400,
        body: { error: { code: 'validation_failed' } },
      });
    }
    expect(await h.call(null, 'GET', '/v1/search?q=a')).toMatchObject({ status: 401 });
  });
});
