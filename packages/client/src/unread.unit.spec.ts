import type { ServerFrameOf } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { UnreadCounts, type UnreadSeed } from './unread.js';

// The unread counting rules of API.md §4 (v1.1), one test each, on frames as the gateway sends them.

const ME = 'me';
const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';

type EventFrame = Pick<ServerFrameOf<'event'>, 'conversationId' | 'seq' | 'event'>;

const envelope = <T extends EventFrame['event']['type']>(
  conversationId: string,
  seq: number,
  type: T,
  data: Extract<EventFrame['event'], { type: T }>['data'],
): EventFrame =>
  ({
    conversationId,
    seq,
    event: {
      id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
      type,
      streamId: `conversation-${conversationId}`,
      revision: seq,
      position: String(seq).padStart(32, '0'),
      occurredAt: '2026-01-01T00:00:00.000Z',
      data,
      metadata: { userId: ME, correlationId: 'c', causationId: null, schemaVersion: 1 },
    },
  }) as EventFrame;

const sent = (conversationId: string, seq: number, senderId: string) =>
  envelope(conversationId, seq, 'MessageSent', {
    conversationId,
    messageId: `10000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
    senderId,
    body: `message ${seq}`,
    replyTo: null,
    sentAt: '2026-01-01T00:00:00.000Z',
  });

const seed = (conversationId: string, unreadCount: number, readSeq: number, lastSeq: number): UnreadSeed => ({
  conversationId,
  unreadCount,
  readSeq,
  lastSeq,
});

const seeded = (...conversations: UnreadSeed[]) => {
  const counts = new UnreadCounts(ME);
  counts.seed(conversations, { complete: true });
  return counts;
};

describe('UnreadCounts', () => {
  it('is seeded per conversation and in total from GET /v1/conversations', () => {
    const counts = seeded(seed(A, 3, 4, 7), seed(B, 0, 2, 2), seed(C, 5, 1, 9));
    expect(counts.total).toBe(8);
    expect(counts.get(A)).toEqual({ unreadCount: 3, readSeq: 4, lastSeq: 7 });
    expect(counts.get(B)?.unreadCount).toBe(0);
  });

  it('adds 1 for a MessageSent from someone else above readSeq, to the conversation and the total', () => {
    const counts = seeded(seed(A, 3, 4, 7), seed(B, 1, 0, 1));
    expect(counts.applyEvent(sent(A, 8, 'bob'))).toBe('changed');
    expect(counts.get(A)?.unreadCount).toBe(4);
    expect(counts.total).toBe(5);
  });

  it('does not count a MessageSent from someone else at or below readSeq (a replay after a receipt)', () => {
    const counts = seeded(seed(A, 0, 4, 2));
    expect(counts.applyEvent(sent(A, 3, 'bob'))).toBe('unchanged');
    expect(counts.applyEvent(sent(A, 4, 'bob'))).toBe('unchanged');
    expect(counts.get(A)?.unreadCount).toBe(0);
    expect(counts.applyEvent(sent(A, 5, 'bob'))).toBe('changed');
    expect(counts.get(A)?.unreadCount).toBe(1);
  });

  it("sets the count to 0 and readSeq to its seq for the user's own MessageSent (any device)", () => {
    const counts = seeded(seed(A, 6, 1, 7), seed(B, 2, 0, 2));
    expect(counts.applyEvent(sent(A, 8, ME))).toBe('changed');
    expect(counts.get(A)).toEqual({ unreadCount: 0, readSeq: 8, lastSeq: 8 });
    expect(counts.total).toBe(2);
    // Nothing before the own message counts any more, even when it arrives late (a replay).
    expect(counts.applyEvent(sent(A, 8, 'bob'))).toBe('unchanged');
  });

  it('takes the count from an unread frame; the total is the sum of the conversations', () => {
    const counts = seeded(seed(A, 6, 1, 7), seed(B, 2, 0, 2));
    expect(counts.applyUnread({ conversationId: A, unreadCount: 1 })).toBe('changed');
    expect(counts.get(A)?.unreadCount).toBe(1);
    expect(counts.total).toBe(3);
    expect(counts.applyUnread({ conversationId: A, unreadCount: 1 })).toBe('unchanged');
  });

  it("moves readSeq from the user's own receipts, forward only, and ignores other members' receipts", () => {
    const counts = seeded(seed(A, 2, 1, 7));
    counts.applyReceipt({ conversationId: A, userId: 'bob', readSeq: 7 });
    expect(counts.get(A)?.readSeq).toBe(1);
    counts.applyReceipt({ conversationId: A, userId: ME, readSeq: 6 });
    expect(counts.get(A)?.readSeq).toBe(6);
    counts.applyReceipt({ conversationId: A, userId: ME, readSeq: 3 });
    expect(counts.get(A)?.readSeq).toBe(6);
    // The receipt alone leaves the count to the unread frame that comes with every MarkRead.
    expect(counts.get(A)?.unreadCount).toBe(2);
    expect(counts.applyEvent(sent(A, 8, 'bob'))).toBe('changed');
    expect(counts.get(A)?.unreadCount).toBe(3);
  });

  it('v1.1: a MarkRead elsewhere arrives as receipt + unread frame; new messages bring no frame', () => {
    const counts = seeded(seed(A, 0, 3, 3));
    for (let seq = 4; seq <= 8; seq++) counts.applyEvent(sent(A, seq, 'bob'));
    expect(counts.get(A)?.unreadCount).toBe(5);
    counts.applyReceipt({ conversationId: A, userId: ME, readSeq: 6 });
    counts.applyUnread({ conversationId: A, unreadCount: 2 });
    counts.applyEvent(sent(A, 9, 'bob'));
    expect(counts.get(A)).toEqual({ unreadCount: 3, readSeq: 6, lastSeq: 9 });
  });

  it('before v1.1: the per-message unread frame after its event sets the same count (no double count)', () => {
    const counts = seeded(seed(A, 0, 3, 3));
    counts.applyEvent(sent(A, 4, 'bob'));
    counts.applyUnread({ conversationId: A, unreadCount: 1 });
    counts.applyEvent(sent(A, 5, 'bob'));
    counts.applyUnread({ conversationId: A, unreadCount: 2 });
    expect(counts.get(A)?.unreadCount).toBe(2);
    expect(counts.total).toBe(2);
  });

  it('counts an event once: duplicates and events the seed already includes change nothing', () => {
    const counts = seeded(seed(A, 2, 0, 5));
    expect(counts.applyEvent(sent(A, 5, 'bob'))).toBe('unchanged');
    expect(counts.applyEvent(sent(A, 6, 'bob'))).toBe('changed');
    expect(counts.applyEvent(sent(A, 6, 'bob'))).toBe('unchanged');
    expect(counts.get(A)?.unreadCount).toBe(3);
  });

  it('re-seeding from a lagging read model replays the events the snapshot does not have yet', () => {
    const counts = seeded(seed(A, 0, 2, 2), seed(B, 0, 1, 1));
    for (let seq = 3; seq <= 6; seq++) counts.applyEvent(sent(A, seq, 'bob'));
    counts.applyEvent(sent(B, 2, 'carol'));
    expect(counts.total).toBe(5);
    // After a reconnect: the read model has A up to seq 4 and B up to 2.
    counts.seed([seed(A, 2, 2, 4), seed(B, 1, 1, 2)], { complete: true });
    expect(counts.get(A)).toEqual({ unreadCount: 4, readSeq: 2, lastSeq: 6 });
    expect(counts.get(B)?.unreadCount).toBe(1);
    expect(counts.total).toBe(5);
    // A second reconnect whose read model still lags (no further back: read models only move on).
    counts.seed([seed(A, 2, 2, 4), seed(B, 1, 1, 2)], { complete: true });
    expect(counts.get(A)?.unreadCount).toBe(4);
    expect(counts.total).toBe(5);
    // A seed that is up to date replays nothing twice.
    counts.seed([seed(A, 4, 2, 6), seed(B, 1, 1, 2)], { complete: true });
    expect(counts.total).toBe(5);
  });

  it('an unread frame from before a seed does not override the seed', () => {
    const counts = seeded(seed(A, 3, 0, 3));
    counts.applyUnread({ conversationId: A, unreadCount: 0 });
    counts.seed([seed(A, 5, 2, 7)], { complete: true });
    expect(counts.get(A)?.unreadCount).toBe(5);
  });

  it('a newer own receipt survives a seed taken before it', () => {
    const counts = seeded(seed(A, 3, 0, 3));
    counts.applyReceipt({ conversationId: A, userId: ME, readSeq: 3 });
    counts.seed([seed(A, 3, 0, 3)], { complete: true });
    expect(counts.get(A)?.readSeq).toBe(3);
    // Also through a second snapshot that still lags (a reconnect soon after).
    counts.seed([seed(A, 3, 0, 3)], { complete: true });
    expect(counts.get(A)?.readSeq).toBe(3);
  });

  it('a complete seed drops conversations the user is no longer in', () => {
    const counts = seeded(seed(A, 3, 0, 3), seed(B, 2, 0, 2));
    counts.seed([seed(A, 3, 0, 3)], { complete: true });
    expect(counts.get(B)).toBeUndefined();
    expect(counts.total).toBe(3);
  });

  it('starts a conversation the user joins at 0 with readSeq at the joining seq; leaving drops it', () => {
    const counts = seeded(seed(A, 1, 0, 1));
    counts.applyEvent(
      envelope(B, 0, 'ConversationStarted', {
        conversationId: B,
        kind: 'group',
        title: 't',
        createdBy: 'bob',
        members: [ME, 'carol'],
      }),
    );
    expect(counts.get(B)).toEqual({ unreadCount: 0, readSeq: 0, lastSeq: 0 });
    counts.applyEvent(sent(B, 1, 'bob'));
    counts.applyEvent(envelope(C, 7, 'MemberJoined', { conversationId: C, userId: ME, addedBy: 'bob' }));
    expect(counts.get(C)).toEqual({ unreadCount: 0, readSeq: 7, lastSeq: 7 });
    counts.applyEvent(sent(C, 8, 'bob'));
    expect(counts.total).toBe(3);
    counts.applyEvent(envelope(C, 9, 'MemberLeft', { conversationId: C, userId: ME, removedBy: ME }));
    expect(counts.get(C)).toBeUndefined();
    expect(counts.total).toBe(2);
    // Another member joining or leaving changes no count.
    counts.applyEvent(envelope(B, 2, 'MemberJoined', { conversationId: B, userId: 'dave', addedBy: 'bob' }));
    expect(counts.get(B)).toEqual({ unreadCount: 1, readSeq: 0, lastSeq: 2 });
  });

  it('edits and deletions change no count by themselves (a deleted unread message brings an unread frame)', () => {
    const counts = seeded(seed(A, 0, 0, 0));
    counts.applyEvent(sent(A, 1, 'bob'));
    const messageId = '10000000-0000-4000-8000-000000000001';
    counts.applyEvent(
      envelope(A, 2, 'MessageEdited', {
        conversationId: A,
        messageId,
        editorId: 'bob',
        body: 'x',
        editedAt: '2026-01-01T00:00:01.000Z',
      }),
    );
    counts.applyEvent(
      envelope(A, 3, 'MessageDeleted', {
        conversationId: A,
        messageId,
        deletedBy: 'bob',
        deletedAt: '2026-01-01T00:00:02.000Z',
      }),
    );
    expect(counts.get(A)).toEqual({ unreadCount: 1, readSeq: 0, lastSeq: 3 });
    counts.applyUnread({ conversationId: A, unreadCount: 0 });
    expect(counts.total).toBe(0);
  });

  it('reports a message in a conversation it was not seeded with as unknown, and counts it once seeded', () => {
    const counts = seeded(seed(A, 0, 0, 0));
    expect(counts.applyEvent(sent(B, 5, 'bob'))).toBe('unknown');
    expect(counts.applyEvent(sent(B, 6, 'bob'))).toBe('unknown');
    expect(counts.total).toBe(0);
    counts.seed([seed(B, 1, 4, 5)], { complete: false });
    expect(counts.get(B)).toEqual({ unreadCount: 2, readSeq: 4, lastSeq: 6 });
    expect(counts.get(A)).toBeDefined();
    expect(counts.total).toBe(2);
  });

  it('moves the seq but no count on a reaction, an edit and an event type of a later contract version', () => {
    const counts = seeded(seed(A, 2, 4, 6));
    const reacted = envelope(A, 7, 'ReactionAdded', {
      conversationId: A,
      messageId: '10000000-0000-4000-8000-000000000006',
      userId: 'bob',
      reaction: '👍',
      at: '2026-01-01T00:00:00.000Z',
      messageSenderId: ME,
    });
    expect(counts.applyEvent(reacted)).toBe('unchanged');
    const later = {
      ...reacted,
      seq: 8,
      event: { ...reacted.event, type: 'PollCreated' },
    } as unknown as EventFrame;
    expect(counts.applyEvent(later)).toBe('unchanged');
    expect(counts.get(A)).toEqual({ unreadCount: 2, readSeq: 4, lastSeq: 8 });
    expect(counts.applyEvent(sent(A, 9, 'bob'))).toBe('changed');
    expect(counts.get(A)).toEqual({ unreadCount: 3, readSeq: 4, lastSeq: 9 });
  });
});
