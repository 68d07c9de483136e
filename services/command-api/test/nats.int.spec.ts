import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type CommandName, type CommandReply, type CommandRequest, natsSubjects } from '@chat/events';
import { signToken, testSubjectPrefix } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { publishingConversationEvents } from '../src/nats/live-publisher.js';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
let id: string;
beforeAll(async () => {
  h = await startHarness('nats');
  id = await h.createGroup('alice', ['bob']);
});
afterAll(() => h?.close());

const request = async (
  name: CommandName | string,
  payload: CommandRequest | string,
): Promise<CommandReply> => {
  const data = typeof payload === 'string' ? payload : JSON.stringify(payload);
  const msg = await h.nats.request(`${h.prefix}.cmd.${name}`, new TextEncoder().encode(data), {
    timeout: 5000,
  });
  return JSON.parse(new TextDecoder().decode(msg.data)) as CommandReply;
};

describe('NATS request/reply <prefix>.cmd.<name>', () => {
  it('sendMessage: same result as HTTP, idempotent, correlation id carried', async () => {
    const messageId = randomUUID();
    const correlationId = randomUUID();
    const req: CommandRequest = {
      userId: 'bob',
      correlationId,
      params: { conversationId: id },
      body: { messageId, body: 'over nats' },
    };
    const reply = await request('sendMessage', req);
    expect(reply).toEqual({
      ok: true,
      status: 201,
      result: {
        messageId,
        conversationId: id,
        seq: 1,
        sentAt: expect.any(String),
        position: expect.any(String),
      },
    });
    const again = await request('sendMessage', req);
    expect(again).toEqual({ ...reply, status: 200 });
    const events = await h.stream(`conversation-${id}`);
    expect(events).toHaveLength(2);
    expect(events[1]?.metadata).toMatchObject({ userId: 'bob', correlationId });
  });

  it('a command still queued when its requester has stopped waiting (budgetMs) is refused, not run', async () => {
    // A transaction that holds the log's append lock: the first command's append waits behind it, and
    // the second, to the same conversation, queues behind the first.
    const open = await h.pool.connect();
    const first = randomUUID();
    const late = randomUUID();
    let replies: Promise<[CommandReply, CommandReply]>;
    try {
      await open.query('BEGIN');
      await open.query('SELECT o_status FROM es.append_batch($1::jsonb)', [
        JSON.stringify([
          {
            i: 0,
            s: `held-${randomUUID()}`,
            e: null,
            ev: [{ id: randomUUID(), type: 'Held', data: {}, metadata: {} }],
          },
        ]),
      ]);
      const send = (messageId: string, budgetMs: number) =>
        request('sendMessage', {
          userId: 'bob',
          params: { conversationId: id },
          body: { messageId, body: 'queued' },
          budgetMs,
        });
      const firstReply = send(first, 10_000);
      await sleep(100);
      const lateReply = send(late, 500);
      replies = Promise.all([firstReply, lateReply]);
      // Longer than the second requester waits: by the time its turn comes, nobody waits for it.
      await sleep(800);
    } finally {
      await open.query('ROLLBACK').catch(() => undefined);
      open.release();
    }
    const [firstAnswer, lateAnswer] = await replies;
    expect(firstAnswer).toMatchObject({ ok: true, status: 201 });
    expect(lateAnswer).toMatchObject({ ok: false, status: 503, error: { code: 'unavailable' } });
    const ids = (await h.stream(`conversation-${id}`)).map(
      (e) => (e.data as { messageId?: string }).messageId,
    );
    expect(ids).toContain(first);
    expect(ids).not.toContain(late);
  });

  it('markRead and typing', async () => {
    const read = await request('markRead', {
      userId: 'alice',
      params: { conversationId: id },
      body: { upToSeq: 1 },
    });
    expect(read).toEqual({ ok: true, status: 200, result: { readSeq: 1, position: expect.any(String) } });
    const typing = await request('typing', { userId: 'alice', params: { conversationId: id }, body: {} });
    expect(typing).toEqual({ ok: true, status: 202, result: { throttled: false } });
    const throttled = await request('typing', { userId: 'alice', params: { conversationId: id }, body: {} });
    expect(throttled).toEqual({ ok: true, status: 202, result: { throttled: true } });
    expect(await h.stream(`receipts-${id}`)).toHaveLength(1);
    expect(await h.stream(`typing-${id}`)).toHaveLength(1);
  });

  it('the other commands: create, add, edit, delete, mute, remove', async () => {
    const created = await request('createConversation', {
      userId: 'alice',
      params: {},
      body: { kind: 'group', members: ['bob'], title: 'via nats' },
    });
    expect(created).toMatchObject({ ok: true, status: 201, result: { seq: 0 } });
    if (!created.ok || !('conversationId' in created.result)) throw new Error('create failed');
    const { conversationId } = created.result;
    const params = { conversationId };
    expect(await request('addMember', { userId: 'bob', params, body: { userId: 'carol' } })).toMatchObject({
      status: 200,
      result: { seq: 1 },
    });
    const messageId = randomUUID();
    await request('sendMessage', { userId: 'carol', params, body: { messageId, body: 'x' } });
    expect(
      await request('editMessage', {
        userId: 'carol',
        params: { ...params, messageId },
        body: { body: 'y' },
      }),
    ).toMatchObject({
      status: 200,
      result: { seq: 3 },
    });
    expect(
      await request('deleteMessage', { userId: 'carol', params: { ...params, messageId }, body: {} }),
    ).toMatchObject({
      status: 200,
      result: { seq: 4 },
    });
    expect(await request('mute', { userId: 'carol', params, body: { until: null } })).toMatchObject({
      status: 200,
    });
    expect(
      await request('removeMember', { userId: 'carol', params: { ...params, userId: 'carol' }, body: null }),
    ).toMatchObject({
      status: 200,
      result: { seq: 5 },
    });
  });

  it('answers errors as API error objects, nothing appended', async () => {
    const before = await h.logSize();
    expect(
      await request('sendMessage', {
        userId: 'mallory',
        params: { conversationId: id },
        body: { messageId: randomUUID(), body: 'x' },
      }),
    ).toEqual({
      ok: false,
      status: 404,
      error: { code: 'not_found', message: 'conversation not found' },
    });
    expect(
      await request('sendMessage', {
        userId: 'bob',
        params: { conversationId: id },
        body: { messageId: randomUUID(), body: '  ' },
      }),
    ).toEqual({
      ok: false,
      status: 400,
      error: {
        code: 'validation_failed',
        message: expect.any(String),
        details: [{ path: ['body'], message: expect.any(String) }],
      },
    });
    expect(
      await request('markRead', { userId: 'bob', params: { conversationId: 'nope' }, body: { upToSeq: 0 } }),
    ).toMatchObject({
      status: 400,
      error: { code: 'validation_failed', details: [{ path: ['params', 'conversationId'] }] },
    });
    expect(await request('markRead', '{not json')).toMatchObject({
      status: 400,
      error: { code: 'validation_failed' },
    });
    expect(await request('markRead', { userId: '', body: {} } as CommandRequest)).toMatchObject({
      status: 400,
    });
    expect(await request('noSuchCommand', { userId: 'bob', body: {} })).toMatchObject({
      status: 404,
      error: { code: 'not_found' },
    });
    expect(await h.logSize()).toBe(before);
  });
});

describe('conversation events published by the command-api as it stores them (LIVE_PUBLISH_FROM)', () => {
  const listen = (subject: string) => {
    const got: unknown[] = [];
    const sub = h.nats.subscribe(subject, {
      callback: (_err, msg) => got.push(JSON.parse(new TextDecoder().decode(msg.data))),
    });
    return { got, sub };
  };

  it('publishes each as the store records it, a membership change also to its member, a receipt not', async () => {
    const conversation = await h.createGroup('alice', ['bob']);
    // Its ConversationStarted leaves with the outbox at the end of this turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    await h.nats.flush();
    await sleep(50);
    const conv = listen(h.subjects.conversation(conversation));
    const carol = listen(h.subjects.user('carol'));
    await h.nats.flush();
    const sent = await h.call('alice', 'POST', `/v1/conversations/${conversation}/messages`, {
      messageId: randomUUID(),
      body: 'straight from the writer',
    });
    expect(sent.status).toBe(201);
    expect(
      (await h.call('alice', 'POST', `/v1/conversations/${conversation}/members`, { userId: 'carol' }))
        .status,
    ).toBe(200);
    expect(
      (await h.call('bob', 'POST', `/v1/conversations/${conversation}/read`, { upToSeq: 1 })).status,
    ).toBe(200);
    await h.nats.flush();
    await sleep(100);
    conv.sub.unsubscribe();
    carol.sub.unsubscribe();
    // No relay runs here: everything on these subjects is the command-api's, and equal to the log's events
    // (the relay publishes them decrypted, as read).
    const stored = await h.stream(`conversation-${conversation}`);
    expect(stored.map((e) => e.type)).toEqual(['ConversationStarted', 'MessageSent', 'MemberJoined']);
    expect(conv.got).toEqual(JSON.parse(JSON.stringify(stored.slice(1))));
    expect(carol.got).toEqual([{ type: 'membership', event: JSON.parse(JSON.stringify(stored[2])) }]);
  });

  it('publishes nothing with LIVE_PUBLISH_FROM=relay', async () => {
    const subjects = natsSubjects(testSubjectPrefix());
    const relayOnly = await h.variant({ LIVE_PUBLISH_FROM: 'relay' }, { subjects });
    const everything = listen(`${subjects.prefix}.>`);
    try {
      await h.nats.flush();
      const headers = { authorization: `Bearer ${await signToken('alice')}` };
      const created = await relayOnly.inject({
        method: 'POST',
        url: '/v1/conversations',
        headers,
        payload: { kind: 'group', members: ['bob'], title: 'relay only' },
      });
      expect(created.statusCode).toBe(201);
      const { conversationId } = created.json() as { conversationId: string };
      const sent = await relayOnly.inject({
        method: 'POST',
        url: `/v1/conversations/${conversationId}/messages`,
        headers,
        payload: { messageId: randomUUID(), body: 'for the relay' },
      });
      expect(sent.statusCode).toBe(201);
      await h.nats.flush();
      await sleep(100);
      expect(everything.got).toEqual([]);
    } finally {
      everything.sub.unsubscribe();
      await relayOnly.close();
    }
  });

  it('answers a stored event as stored when publishing it fails (NATS closed, payload over its limit)', async () => {
    const warnings: unknown[] = [];
    const store = publishingConversationEvents(
      h.store,
      h.subjects,
      () => {
        throw new Error('connection draining');
      },
      { warn: (...args: unknown[]) => warnings.push(args) } as never,
    );
    const conversation = await h.createGroup('alice', ['bob']);
    const event = {
      id: randomUUID(),
      type: 'MemberJoined',
      data: { conversationId: conversation, userId: 'carol', addedBy: 'alice' },
      metadata: { userId: 'alice', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
    };
    const result = await store.append(`conversation-${conversation}`, [event], 0);
    expect(result).toMatchObject({ nextExpectedRevision: 1 });
    expect((await h.stream(`conversation-${conversation}`)).at(-1)?.id).toBe(event.id);
    expect(warnings).toHaveLength(1);
  });
});
