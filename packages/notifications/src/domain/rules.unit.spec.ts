import type { ChatEventOf } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { type ConversationState, evolve, startedState } from './conversation.js';
import { notificationIdFor } from './notification-id.js';
import { notificationsFor, previewAfter } from './rules.js';

const CONV = '0b9f2f4e-1c1a-4d1b-9a55-0d5a2f0c7e11';
const MSG = '6a2b1c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const rules = { notifyAllMaxMembers: 50, notificationIdFor };

const given = (...events: ChatEventOf<'MemberJoined' | 'MemberLeft' | 'ConversationMuted'>[]) => {
  const state = startedState({
    conversationId: CONV,
    kind: 'group',
    title: null,
    createdBy: 'alice',
    members: ['alice', 'bob', 'carol'],
  });
  for (const e of events) evolve(state, e);
  return state;
};

const sent = (body: string, sentAt = '2026-01-01T10:00:00.000Z', senderId = 'alice') => ({
  conversationId: CONV,
  messageId: MSG,
  senderId,
  body,
  replyTo: null,
  sentAt,
});

const recipients = (state: ConversationState, body: string, sentAt?: string) =>
  notificationsFor(state, sent(body, sentAt), rules).map((r) => `${r.recipientId}:${r.kind}`);

describe('notificationsFor', () => {
  it('notifies every member but the sender, mentions marked', () => {
    expect(recipients(given(), 'hi @bob')).toEqual(['bob:mention', 'carol:message']);
  });

  it('follows joins and leaves', () => {
    const state = given(
      { type: 'MemberJoined', data: { conversationId: CONV, userId: 'dave', addedBy: 'alice' } },
      { type: 'MemberLeft', data: { conversationId: CONV, userId: 'carol', removedBy: 'carol' } },
    );
    expect(recipients(state, 'hello')).toEqual(['bob:message', 'dave:message']);
  });

  it('skips a member while muted and notifies again after the mute expires', () => {
    const state = given({
      type: 'ConversationMuted',
      data: { conversationId: CONV, userId: 'bob', until: '2026-01-01T12:00:00.000Z' },
    });
    expect(recipients(state, '@bob hi', '2026-01-01T11:59:59.999Z')).toEqual(['carol:message']);
    expect(recipients(state, '@bob hi', '2026-01-01T12:00:00.000Z')).toEqual([
      'bob:mention',
      'carol:message',
    ]);
    evolve(state, {
      type: 'ConversationMuted',
      data: { conversationId: CONV, userId: 'carol', until: null },
    });
    evolve(state, { type: 'ConversationMuted', data: { conversationId: CONV, userId: 'bob', until: null } });
    expect(recipients(state, 'x', '2026-01-01T11:00:00.000Z')).toEqual(['bob:message', 'carol:message']);
  });

  it('notifies only mentions in groups above the limit, counting the sender', () => {
    const state = given();
    for (let i = 0; i < 48; i++)
      evolve(state, {
        type: 'MemberJoined',
        data: { conversationId: CONV, userId: `u${i}`, addedBy: 'alice' },
      });
    expect(state.members.size).toBe(51);
    expect(recipients(state, 'no mention')).toEqual([]);
    expect(recipients(state, 'ping @u7 and @bobby')).toEqual(['u7:mention']);
    state.members.delete('u0');
    expect(recipients(state, 'no mention')).toHaveLength(49);
  });

  it('derives stable ids from message and recipient', () => {
    const [a] = notificationsFor(given(), sent('x'), rules);
    const [b] = notificationsFor(given(), sent('y'), rules);
    expect(a?.notificationId).toBe(b?.notificationId);
    expect(a?.notificationId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(notificationIdFor(CONV, MSG, 'bob')).not.toBe(notificationIdFor(CONV, MSG, 'carol'));
  });

  it('keeps the preview to 200 code points and clears it on delete', () => {
    const [r] = notificationsFor(given(), sent('😀'.repeat(300)), rules);
    expect([...(r?.preview ?? '')]).toHaveLength(200);
    const deleted = {
      type: 'MessageDeleted',
      data: {
        conversationId: CONV,
        messageId: MSG,
        deletedBy: 'alice',
        deletedAt: '2026-01-01T10:00:00.000Z',
      },
    } as const;
    expect(previewAfter(deleted)).toBe('');
  });
});
