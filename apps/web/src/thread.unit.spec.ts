import type { ConversationEnvelope, Message } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { Thread } from './thread.js';

// A conversation's messages as the page shows them: HTTP pages and live events merged, each message
// once, in seq order, never undoing an edit or a deletion.

const C = '00000000-0000-4000-8000-00000000000c';
const id = (n: number) => `10000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

const message = (seq: number, body: string, extra: Partial<Message> = {}): Message => ({
  messageId: id(seq),
  conversationId: C,
  seq,
  senderId: 'bob',
  body,
  erased: false,
  replyTo: null,
  sentAt: '2026-01-01T00:00:00.000Z',
  editedAt: null,
  deleted: false,
  reactions: [],
  threadRootId: null,
  replyCount: 0,
  lastReplyAt: null,
  threadParticipantIds: [],
  ...extra,
});

const event = (seq: number, type: string, data: Record<string, unknown>): ConversationEnvelope =>
  ({
    id: id(1000 + seq),
    type,
    streamId: `conversation-${C}`,
    revision: seq,
    position: String(seq).padStart(32, '0'),
    occurredAt: '2026-01-01T00:00:00.000Z',
    data: { conversationId: C, ...data },
    metadata: { userId: 'bob', correlationId: 'c', causationId: null, schemaVersion: 1 },
  }) as ConversationEnvelope;

const sent = (seq: number, body: string) =>
  event(seq, 'MessageSent', {
    messageId: id(seq),
    senderId: 'bob',
    body,
    replyTo: null,
    sentAt: '2026-01-01T00:00:00.000Z',
  });

const bodies = (t: Thread) => t.messages.map((m) => `${m.seq}:${m.body ?? '∅'}`);

describe('Thread', () => {
  it('merges live messages with pages that overlap them: each message once, in seq order', () => {
    const t = new Thread();
    t.apply(sent(5, 'five'));
    t.apply(sent(6, 'six'));
    t.addPage([message(3, 'three'), message(5, 'five')], true, 'newest');
    expect(bodies(t)).toEqual(['3:three', '5:five', '6:six']);
    expect([t.loaded, t.hasOlder, t.oldestSeq]).toEqual([true, true, 3]);
    t.addPage([message(1, 'one'), message(2, 'two')], false, 'older');
    expect(bodies(t)).toEqual(['1:one', '2:two', '3:three', '5:five', '6:six']);
    expect(t.hasOlder).toBe(false);
  });

  it('keeps a live edit or deletion when a page from a lagging read model arrives after it', () => {
    const t = new Thread();
    t.apply(sent(1, 'typo'));
    t.apply(sent(2, 'oops'));
    t.apply(
      event(3, 'MessageEdited', {
        messageId: id(1),
        editorId: 'bob',
        body: 'fixed',
        editedAt: '2026-01-01T00:00:01.000Z',
      }),
    );
    t.apply(
      event(4, 'MessageDeleted', {
        messageId: id(2),
        deletedBy: 'bob',
        deletedAt: '2026-01-01T00:00:02.000Z',
      }),
    );
    t.addPage([message(1, 'typo'), message(2, 'oops')], false, 'newest');
    expect(bodies(t)).toEqual(['1:fixed', '2:∅']);
    expect(t.get(id(2))?.deleted).toBe(true);
    // A newer edit from a page is taken; an edit of a deleted message is not.
    t.addPage([message(1, 'fixed twice', { editedAt: '2026-01-01T00:00:05.000Z' })], false, 'older');
    t.apply(
      event(5, 'MessageEdited', {
        messageId: id(2),
        editorId: 'bob',
        body: 'back',
        editedAt: '2026-01-01T00:00:06.000Z',
      }),
    );
    expect(bodies(t)).toEqual(['1:fixed twice', '2:∅']);
  });

  it('counts reactions from live events (v1.1), the first 20 users listed', () => {
    const t = new Thread();
    t.apply(sent(1, 'react'));
    for (let i = 0; i < 22; i++)
      t.apply(
        event(2 + i, 'ReactionAdded', {
          messageId: id(1),
          userId: `u${i}`,
          reaction: '👍',
          at: '2026-01-01T00:00:00.000Z',
        }),
      );
    t.apply(
      event(30, 'ReactionAdded', {
        messageId: id(1),
        userId: 'u0',
        reaction: '🎉',
        at: '2026-01-01T00:00:00.000Z',
      }),
    );
    t.apply(
      event(31, 'ReactionRemoved', {
        messageId: id(1),
        userId: 'u0',
        reaction: '👍',
        at: '2026-01-01T00:00:00.000Z',
      }),
    );
    const [thumbs, party] = t.get(id(1))!.reactions;
    expect(thumbs).toMatchObject({ reaction: '👍', count: 21 });
    expect(thumbs!.userIds).toHaveLength(19);
    expect(thumbs!.userIds).not.toContain('u0');
    expect(party).toEqual({ reaction: '🎉', count: 1, userIds: ['u0'] });
    t.apply(
      event(32, 'ReactionRemoved', {
        messageId: id(1),
        userId: 'u0',
        reaction: '🎉',
        at: '2026-01-01T00:00:00.000Z',
      }),
    );
    expect(t.get(id(1))!.reactions.map((r) => r.reaction)).toEqual(['👍']);
  });

  it('counts live thread replies on their root; a lagging page does not undo the count', () => {
    const t = new Thread();
    t.addPage([message(1, 'root')], false, 'newest');
    t.noteReply(id(1), { senderId: 'carol', sentAt: '2026-01-01T00:01:00.000Z' });
    t.noteReply(id(1), { senderId: 'dave', sentAt: '2026-01-01T00:02:00.000Z' });
    t.noteReply(id(99), { senderId: 'dave', sentAt: '2026-01-01T00:02:00.000Z' });
    const root = t.get(id(1))!;
    expect([root.replyCount, root.lastReplyAt, root.threadParticipantIds]).toEqual([
      2,
      '2026-01-01T00:02:00.000Z',
      ['dave', 'carol'],
    ]);
    t.addPage(
      [message(1, 'root', { replyCount: 1, lastReplyAt: '2026-01-01T00:01:00.000Z' })],
      false,
      'newest',
    );
    expect(t.get(id(1))!.replyCount).toBe(2);
    t.addPage(
      [message(1, 'root', { replyCount: 3, lastReplyAt: '2026-01-01T00:03:00.000Z' })],
      false,
      'newest',
    );
    expect([t.get(id(1))!.replyCount, t.get(id(1))!.lastReplyAt]).toEqual([3, '2026-01-01T00:03:00.000Z']);
    expect(bodies(t)).toEqual(['1:root']);
  });
});
