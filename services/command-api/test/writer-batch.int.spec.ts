import { randomUUID } from 'node:crypto';
import { createLogger } from '@chat/platform';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  type Actor,
  deleteMessage,
  markRead,
  mute,
  removeMember,
  sendMessage,
  typing,
} from '../src/commands/catalogue.js';
import { ConversationWriter } from '../src/commands/conversation-writer.js';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('writerbatch');
});
afterAll(() => h?.close());

const actor = (userId: string): Actor => ({
  userId,
  roles: [],
  correlationId: randomUUID(),
  causationId: null,
});

it('decides a batch of queued commands in order, each on the state the previous left, with exact positions', async () => {
  const id = await h.createGroup('alice', ['bob', 'carol']);
  const services = {
    writer: new ConversationWriter(h.store, { logger: createLogger('test', 'silent') }),
    clock: { now: () => new Date() },
  };
  const m1 = randomUUID();
  const m2 = randomUUID();
  const params = { conversationId: id };
  // Issued without awaiting: the first runs alone (loading the state), the rest queue into one batch.
  const calls = [
    sendMessage.run(services, actor('alice'), params, { messageId: m1, body: 'first' }),
    sendMessage.run(services, actor('alice'), params, { messageId: m1, body: 'first' }),
    sendMessage.run(services, actor('bob'), params, { messageId: m2, body: 'reply', replyTo: m1 }),
    sendMessage.run(services, actor('bob'), params, { messageId: m1, body: 'first' }),
    markRead.run(services, actor('carol'), params, { upToSeq: 2 }),
    typing.run(services, actor('bob'), params, {}),
    typing.run(services, actor('bob'), params, {}),
    mute.run(services, actor('carol'), params, { until: null }),
    removeMember.run(services, actor('alice'), { conversationId: id, userId: 'carol' }, undefined),
    sendMessage.run(services, actor('carol'), params, { messageId: randomUUID(), body: 'too late' }),
    deleteMessage.run(services, actor('alice'), { conversationId: id, messageId: m1 }, undefined),
    deleteMessage.run(services, actor('alice'), { conversationId: id, messageId: m1 }, undefined),
  ];
  const results = await Promise.allSettled(calls);
  const value = (i: number) => {
    const r = results[i];
    if (r?.status !== 'fulfilled')
      throw new Error(`call ${i} failed: ${String(r?.status === 'rejected' && r.reason)}`);
    return r.value;
  };
  const events = await h.stream(`conversation-${id}`);
  const positionOf = (seq: number) => events[seq]?.position;

  expect(value(0)).toMatchObject({ status: 201, result: { seq: 1, position: positionOf(1) } });
  expect(value(1)).toEqual({ ...value(0), status: 200 });
  expect(value(2)).toMatchObject({ status: 201, result: { seq: 2, position: positionOf(2) } });
  expect(results[3]).toMatchObject({ status: 'rejected', reason: { code: 'conflict' } });
  const receipts = await h.stream(`receipts-${id}`);
  expect(value(4)).toEqual({ status: 200, result: { readSeq: 2, position: receipts[0]?.position } });
  expect(value(5)).toEqual({ status: 202, result: { throttled: false } });
  expect(value(6)).toEqual({ status: 202, result: { throttled: true } });
  const muted = (await h.stream('user-carol')).at(-1);
  expect(value(7)).toEqual({ status: 200, result: { position: muted?.position } });
  expect(value(8)).toEqual({ status: 200, result: { seq: 3, position: positionOf(3) } });
  expect(results[9]).toMatchObject({ status: 'rejected', reason: { code: 'not_found' } });
  expect(value(10)).toEqual({ status: 200, result: { seq: 4, position: positionOf(4) } });
  expect(value(11)).toEqual(value(10));

  expect(events.map((e) => e.type)).toEqual([
    'ConversationStarted',
    'MessageSent',
    'MessageSent',
    'MemberLeft',
    'MessageDeleted',
  ]);
  expect(await h.stream(`typing-${id}`)).toHaveLength(1);
  expect(await h.store.getStreamMetadata(`typing-${id}`)).toEqual({ maxAgeSeconds: 3600 });

  // The cache now holds confirmed positions: a later repeat answers with the stored ones.
  const repeat = await sendMessage.run(services, actor('bob'), params, {
    messageId: m2,
    body: 'reply',
    replyTo: m1,
  });
  expect(repeat).toMatchObject({ status: 200, result: { seq: 2, position: positionOf(2) } });
});
