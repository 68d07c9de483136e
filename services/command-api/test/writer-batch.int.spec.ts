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
import { ConversationWriter, InvalidEventError, ReportWriter, UserWriter } from '../src/commands/writer.js';
import type { ConversationCommand } from '../src/conversations/commands.js';
import { type Harness, startHarness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness('writerbatch');
});
afterAll(() => h?.close());

const logger = createLogger('test', 'silent');
const metadata = (userId: string) => ({ userId, correlationId: randomUUID(), causationId: null });
const sendCommand = (senderId: string, body: string, messageId = randomUUID()): ConversationCommand => ({
  type: 'SendMessage',
  data: { messageId, senderId, body, replyTo: null, threadRootId: null, now: new Date().toISOString() },
});
/**
 * Runs a command through a writer directly, answering where its event landed, or for a send that
 * appended nothing, where the message it repeats landed. The answer keeps the state's record, whose
 * position is final once `execute` resolves.
 */
const run = async (
  writer: ConversationWriter,
  conversationId: string,
  command: ConversationCommand,
  userId = 'alice',
) => {
  const at = await writer.execute(conversationId, command, metadata(userId), (state, appended) =>
    command.type === 'SendMessage' ? state.messages.get(command.data.messageId)?.at : appended,
  );
  return at ? { ...at } : null;
};

const actor = (userId: string): Actor => ({
  userId,
  roles: [],
  correlationId: randomUUID(),
  causationId: null,
});

it('decides a batch of queued commands in order, each on the state the previous left, with exact positions', async () => {
  const id = await h.createGroup('alice', ['bob', 'carol']);
  const services = {
    writer: new ConversationWriter(h.store, { logger }),
    users: new UserWriter(h.store, { logger }),
    reports: new ReportWriter(h.store, { logger }),
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

it('keeps an event its own schema refuses out of the log; the commands batched with it go through', async () => {
  const id = await h.createGroup('alice', ['bob']);
  const writer = new ConversationWriter(h.store, { logger });
  // Past the request schemas (as a decider bug would be): the writer's last check refuses these events.
  const results = await Promise.allSettled([
    run(writer, id, sendCommand('alice', 'first')),
    run(writer, id, sendCommand('alice', 'second')),
    run(writer, id, sendCommand('alice', 'bad\u0000')),
    run(writer, id, sendCommand('bob', 'third')),
    run(writer, id, sendCommand('bob', 'lone \ud800')),
    run(writer, id, { type: 'Mute', data: { userId: 'bob', until: '0000-01-01T00:00:00.000Z' } }, 'bob'),
  ]);
  expect(results.map((r) => r.status)).toEqual([
    'fulfilled',
    'fulfilled',
    'rejected',
    'fulfilled',
    'rejected',
    'rejected',
  ]);
  for (const i of [2, 4, 5])
    expect((results[i] as PromiseRejectedResult).reason).toBeInstanceOf(InvalidEventError);
  const events = await h.stream(`conversation-${id}`);
  expect(events.slice(1).map((e) => [e.revision, e.data.body])).toEqual([
    [1, 'first'],
    [2, 'second'],
    [3, 'third'],
  ]);
  expect(results[3]).toMatchObject({ value: { seq: 3, position: events[3]?.position } });
  expect(await h.stream('user-bob')).toEqual([]);
});

it('a writer whose cache is behind retries a lone command and a batch on fresh state, with exact answers', async () => {
  const id = await h.createGroup('alice', ['bob']);
  const a = new ConversationWriter(h.store, { logger });
  const b = new ConversationWriter(h.store, { logger });
  // Both cache the conversation, then A writes twice: B's cache is two events behind.
  await run(a, id, sendCommand('alice', 'a1'));
  await run(b, id, sendCommand('bob', 'b1'));
  await run(a, id, sendCommand('alice', 'a2'));
  const added = await run(a, id, { type: 'AddMember', data: { userId: 'carol', addedBy: 'alice' } });
  // A lone command on B conflicts with A's writes: B catches up and decides it again.
  const b2 = randomUUID();
  const lone = await run(b, id, sendCommand('bob', 'b2', b2));
  await run(a, id, sendCommand('alice', 'a3'));
  // B is behind again. A repeat (nothing to append) runs alone; the rest queue behind it into one
  // batch: b3's append conflicts after it was folded in, so B reloads and redoes b3 and the repeat of
  // b3 decided on it; carol's receipt, in another stream, was confirmed and is answered as it is.
  const b3 = randomUUID();
  const now = new Date().toISOString();
  const [repeat, ...batch] = await Promise.all([
    run(b, id, sendCommand('bob', 'b2', b2)),
    run(b, id, sendCommand('bob', 'b3', b3)),
    run(b, id, sendCommand('bob', 'b3', b3)),
    run(b, id, { type: 'MarkRead', data: { userId: 'carol', upToSeq: 6, now } }, 'carol'),
  ]);
  const events = await h.stream(`conversation-${id}`);
  expect(events.map((e) => e.data.body ?? e.type)).toEqual([
    'ConversationStarted',
    'a1',
    'b1',
    'a2',
    'MemberJoined',
    'b2',
    'a3',
    'b3',
  ]);
  const at = (seq: number) => ({ seq, position: events[seq]?.position });
  expect(added).toEqual(at(4));
  expect(lone).toEqual(at(5));
  expect(repeat).toEqual(at(5));
  const [receipt] = await h.stream(`receipts-${id}`);
  expect(receipt?.data).toMatchObject({ userId: 'carol', upToSeq: 6 });
  expect(batch).toEqual([at(7), at(7), { seq: 0, position: receipt?.position }]);
});
