import { describe, expect, it } from 'vitest';
import { directConversationId, eventId, uuidV5 } from './ids.js';

const UUID_V5 = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('derived ids', () => {
  it('gives a direct pair the same version-5 UUID in either order, and other pairs other ids', () => {
    const id = directConversationId('alice', 'bob');
    expect(id).toMatch(UUID_V5);
    expect(directConversationId('bob', 'alice')).toBe(id);
    expect(directConversationId('alice', 'carol')).not.toBe(id);
    // No ambiguity from concatenation: ("a b", "c") and ("a", "b c") are different pairs.
    expect(directConversationId('a.b', 'c')).not.toBe(directConversationId('a', 'b.c'));
  });

  it('derives MessageSent ids from conversation and messageId, so a retried append is the same event', () => {
    const sent = (messageId: string, body: string) =>
      eventId({
        type: 'MessageSent',
        data: { conversationId: 'c', messageId, senderId: 's', body, replyTo: null, sentAt: 't' },
      });
    expect(sent('m1', 'x')).toBe(sent('m1', 'y'));
    expect(sent('m1', 'x')).not.toBe(sent('m2', 'x'));
    expect(uuidV5('x')).toMatch(UUID_V5);
  });
});
