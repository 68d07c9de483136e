import type { Conversation, ServerFrameOf } from '@chat/events';
import { describe, expect, it } from 'vitest';
import type { ChatClient, ChatClientEvents } from './client.js';
import { Emitter } from './emitter.js';
import { ChatApiError } from './http.js';
import { type UnreadChange, UnreadTracker } from './unread-tracker.js';

// The tracker's wiring: when it seeds (every connect), what it seeds alone, and what it tells the app.

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

class FakeClient extends Emitter<ChatClientEvents> {
  userId: string | undefined;
  fire<K extends keyof ChatClientEvents>(type: K, payload: ChatClientEvents[K]): void {
    if (type === 'hello') this.userId = (payload as ServerFrameOf<'hello'>).userId;
    this.emit(type, payload);
  }
}

const conversation = (id: string, unreadCount: number, readSeq: number, lastSeq: number): Conversation => ({
  conversationId: id,
  kind: 'group',
  title: 't',
  createdBy: 'me',
  members: ['me', 'bob'],
  createdAt: '2026-01-01T00:00:00.000Z',
  lastActivityAt: '2026-01-01T00:00:00.000Z',
  lastSeq,
  readSeq,
  unreadCount,
  mutedUntil: null,
  notificationLevel: 'mentions',
  lastMessage: null,
});

const message = (conversationId: string, seq: number, senderId: string): ServerFrameOf<'event'> =>
  ({
    type: 'event',
    conversationId,
    seq,
    event: {
      id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
      type: 'MessageSent',
      streamId: `conversation-${conversationId}`,
      revision: seq,
      position: String(seq).padStart(32, '0'),
      occurredAt: '2026-01-01T00:00:00.000Z',
      data: {
        conversationId,
        messageId: `10000000-0000-4000-8000-${String(seq).padStart(12, '0')}`,
        senderId,
        body: 'hi',
        replyTo: null,
        sentAt: '2026-01-01T00:00:00.000Z',
      },
      metadata: { userId: senderId, correlationId: 'c', causationId: null, schemaVersion: 1 },
    },
  }) as ServerFrameOf<'event'>;

const hello = (userId: string): ServerFrameOf<'hello'> => ({
  type: 'hello',
  userId,
  connectionId: 'c1',
  heartbeatMs: 25_000,
});

/** An API whose answers the test releases one by one. */
const fakeApi = () => {
  const lists: { resolve: (c: Conversation[]) => void; reject: (e: Error) => void }[] = [];
  const singles = new Map<string, Conversation | Error>();
  const asked: string[] = [];
  const positions: (string | undefined)[] = [];
  return {
    lists,
    singles,
    asked,
    positions,
    allConversations: () =>
      new Promise<Conversation[]>((resolve, reject) => {
        asked.push('all');
        lists.push({ resolve, reject });
      }),
    getConversation: async (id: string, query: { minPosition?: string } = {}) => {
      asked.push(id);
      positions.push(query.minPosition);
      const answer = singles.get(id);
      if (!answer || answer instanceof Error) throw answer ?? new Error('no answer');
      return answer;
    },
  };
};

const settle = () => new Promise((r) => setTimeout(r, 0));

/** A tracker on a fake client, connected and seeded with `conversations`. */
const seededTracker = async (conversations: Conversation[], options: { verifyAfterMs?: number } = {}) => {
  const client = new FakeClient();
  const api = fakeApi();
  const tracker = new UnreadTracker(client as unknown as ChatClient, api, options);
  client.fire('hello', hello('me'));
  api.lists[0]!.resolve(conversations);
  await tracker.ready();
  return { client, api, tracker };
};

describe('UnreadTracker', () => {
  it('seeds on every connect, counts frames in between, and says when counts change', async () => {
    const client = new FakeClient();
    const api = fakeApi();
    const tracker = new UnreadTracker(client as unknown as ChatClient, api);
    const changes: UnreadChange[] = [];
    tracker.on('change', (c) => changes.push(c));
    client.fire('hello', hello('me'));
    // Frames that arrive while the seed is on its way are replayed on top of it.
    client.fire('event', message(A, 3, 'bob'));
    api.lists[0]!.resolve([conversation(A, 1, 1, 2), conversation(B, 0, 0, 0)]);
    await tracker.ready();
    expect(tracker.get(A)).toBe(2);
    expect(tracker.total).toBe(2);
    client.fire('event', message(B, 1, 'bob'));
    expect(tracker.total).toBe(3);
    expect(changes.at(-1)).toEqual({ total: 3, conversationId: B });
    client.fire('unread', { type: 'unread', conversationId: A, unreadCount: 0, total: 1 });
    expect(tracker.total).toBe(1);
    // Reconnect: the server's counts are the truth again.
    client.fire('hello', hello('me'));
    expect(api.asked.filter((a) => a === 'all')).toHaveLength(2);
    api.lists[1]!.resolve([conversation(A, 0, 3, 3), conversation(B, 5, 0, 6)]);
    await settle();
    expect(tracker.total).toBe(5);
    expect(changes.at(-1)).toEqual({ total: 5, conversationId: null });
  });

  it('ignores a seed answer that a newer connect has overtaken', async () => {
    const client = new FakeClient();
    const api = fakeApi();
    const tracker = new UnreadTracker(client as unknown as ChatClient, api);
    client.fire('hello', hello('me'));
    client.fire('hello', hello('me'));
    api.lists[1]!.resolve([conversation(A, 2, 0, 2)]);
    await settle();
    api.lists[0]!.resolve([conversation(A, 9, 0, 1)]);
    await settle();
    expect(tracker.get(A)).toBe(2);
  });

  it('seeds a conversation it does not know (joined since) alone, and skips one it may not read', async () => {
    const { client, api, tracker } = await seededTracker([conversation(A, 0, 0, 0)]);
    api.singles.set(B, conversation(B, 3, 0, 4));
    client.fire('event', message(B, 5, 'bob'));
    await settle();
    expect(api.asked).toContain(B);
    expect(tracker.get(B)).toBe(4);
    const gone = '00000000-0000-4000-8000-00000000000c';
    api.singles.set(gone, new ChatApiError(404, { code: 'not_found', message: 'not found' }));
    const errors: Error[] = [];
    tracker.on('error', (e) => errors.push(e));
    client.fire('event', message(gone, 1, 'bob'));
    await settle();
    expect(errors).toEqual([]);
    expect(tracker.total).toBe(4);
  });

  it('reads a conversation again after an unread frame that crossed a new message (frame first)', async () => {
    const { client, api, tracker } = await seededTracker([conversation(A, 0, 0, 5)], { verifyAfterMs: 20 });
    // A server before v1.1 counted message 6 already, and its frame overtook the message.
    client.fire('unread', { type: 'unread', conversationId: A, unreadCount: 1, total: 1 });
    client.fire('event', message(A, 6, 'bob'));
    expect(tracker.get(A)).toBe(2);
    api.singles.set(A, conversation(A, 1, 0, 6));
    await new Promise((r) => setTimeout(r, 60));
    expect(tracker.get(A)).toBe(1);
    // Read at least up to the last event the client saw.
    expect(api.positions).toEqual([message(A, 6, 'bob').event.position]);
  });

  it('stops listening when closed', async () => {
    const { client, api, tracker } = await seededTracker([conversation(A, 0, 0, 0)]);
    tracker.close();
    client.fire('event', message(A, 1, 'bob'));
    client.fire('hello', hello('me'));
    expect(tracker.total).toBe(0);
    expect(api.lists).toHaveLength(1);
  });
});
