import { randomUUID } from 'node:crypto';
import {
  type ChatEvent,
  conversationStream,
  receiptsStream,
  streamIdOf,
  type UserChannelMessage,
} from '@chat/events';
import { waitFor } from '@chat/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjector } from '../src/index.js';
import { appendEvent, createHarness, type Harness, silentLogger, waitForCheckpoint } from './harness.js';

// API.md §4 v1.1: the projector publishes `unread` only for a MarkRead (to the reader) and for the
// deletion of a message a member had not read (to each such member) — never for a new message.

let h: Harness;
const stop = new AbortController();
let running: Promise<void>;
const frames: { userId: string; message: UserChannelMessage }[] = [];
const T = '2026-01-01T00:00:00.000Z';

beforeAll(async () => {
  h = await createHarness('unread');
  running = createProjector({
    store: h.store,
    pool: h.pool,
    logger: silentLogger,
    publish: (userId, message) => frames.push({ userId, message }),
  }).run(stop.signal);
});
afterAll(async () => {
  stop.abort();
  await running;
  await h.close();
});

const append = (by: string, event: ChatEvent) => appendEvent(h.store, by, event);

const c = randomUUID();
const marker = randomUUID();
const sent = (messageId: string, senderId = 'alice'): ChatEvent => ({
  type: 'MessageSent',
  data: { conversationId: c, messageId, senderId, body: 'hi', replyTo: null, sentAt: T },
});
const read = (userId: string, upToSeq: number, conversationId = c): ChatEvent => ({
  type: 'ConversationRead',
  data: { conversationId, userId, upToSeq, readAt: T },
});
const deleted = (messageId: string): ChatEvent => ({
  type: 'MessageDeleted',
  data: { conversationId: c, messageId, deletedBy: 'alice', deletedAt: T },
});

/**
 * The frames the step's events caused. Frames go out after their batch commits, in log order: a
 * marker read in another conversation, appended last, publishes last.
 */
let markerSeq = 0;
const framesOf = async (step: () => Promise<unknown>) => {
  const from = frames.length;
  await step();
  markerSeq += 1;
  await append('zed', read('zed', markerSeq, marker));
  await waitFor(() => frames.slice(from).some((f) => f.userId === 'zed' && f.message.type === 'unread'), {
    what: 'the marker frame',
  });
  return frames
    .slice(from)
    .filter((f) => f.userId !== 'zed')
    .map((f) =>
      f.message.type === 'unread' ? `${f.userId}:${f.message.unreadCount}/${f.message.total}` : '',
    );
};

describe('unread frames', () => {
  const [m1, m2, m3] = [randomUUID(), randomUUID(), randomUUID()];

  beforeAll(async () => {
    await append('zed', {
      type: 'ConversationStarted',
      data: {
        conversationId: marker,
        kind: 'direct',
        title: null,
        createdBy: 'zed',
        members: ['zed', 'yan'],
      },
    });
    for (let i = 0; i < 10; i++) {
      await append('yan', {
        type: 'MessageSent',
        data: {
          conversationId: marker,
          messageId: randomUUID(),
          senderId: 'yan',
          body: 'x',
          replyTo: null,
          sentAt: T,
        },
      });
    }
    const last = await append('alice', {
      type: 'ConversationStarted',
      data: { conversationId: c, kind: 'group', title: 't', createdBy: 'alice', members: ['bob', 'carol'] },
    });
    await waitForCheckpoint(h.db, last);
  });

  it('a new message publishes none, to anyone', async () => {
    expect(
      await framesOf(async () => {
        await append('alice', sent(m1));
        await append('alice', sent(m2));
        await append('bob', sent(m3, 'bob'));
      }),
    ).toEqual([]);
  });

  it('a MarkRead publishes the reader’s new counts, to the reader only', async () => {
    // Unread for carol above 1: m2 (alice) and m3 (bob).
    expect(await framesOf(() => append('carol', read('carol', 1)))).toEqual(['carol:2/2']);
  });

  it('deleting a message publishes to each member who had not read it, not to who had', async () => {
    // m2 (seq 2): carol has read up to 1; bob's own send moved his watermark to 3; alice sent it.
    expect(await framesOf(() => append('alice', deleted(m2)))).toEqual(['carol:1/1']);
    // m1 (seq 1): every member has read it.
    expect(await framesOf(() => append('alice', deleted(m1)))).toEqual([]);
  });

  it('a leave or a join publishes none; a later joiner never had the deleted message unread', async () => {
    const m4 = randomUUID();
    expect(
      await framesOf(async () => {
        await append('bob', {
          type: 'MemberLeft',
          data: { conversationId: c, userId: 'bob', removedBy: 'bob' },
        });
        await append('alice', sent(m4));
        await append('alice', {
          type: 'MemberJoined',
          data: { conversationId: c, userId: 'dave', addedBy: 'alice' },
        });
      }),
    ).toEqual([]);
    expect(await framesOf(() => append('alice', deleted(m4)))).toEqual(['carol:1/1']);
    // The receipts stream is where MarkReads live (the projection reads it like the conversation's).
    expect(streamIdOf(read('carol', 1))).toBe(receiptsStream(c));
    expect(streamIdOf(sent(m4))).toBe(conversationStream(c));
  });
});
