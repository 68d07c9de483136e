import type { ChatEventOf, NotificationLevel } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { type ConversationState, evolve, type StateEvent, startedState } from './conversation.js';
import { notificationIdFor } from './notification-id.js';
import { notificationsFor, previewAfter, reactionNotificationFor } from './rules.js';

// The notification rules of API.md §2.4 (v1.1), given/when/then over the pure fold and rules.

const CONV = '0b9f2f4e-1c1a-4d1b-9a55-0d5a2f0c7e11';
const MSG = '6a2b1c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const T = '2026-01-01T10:00:00.000Z';

type Sent = ChatEventOf<'MessageSent'>['data'];

const joined = (userId: string): StateEvent => ({
  type: 'MemberJoined',
  data: { conversationId: CONV, userId, addedBy: 'alice' },
});
const left = (userId: string): StateEvent => ({
  type: 'MemberLeft',
  data: { conversationId: CONV, userId, removedBy: userId },
});
const level = (userId: string, value: NotificationLevel): StateEvent => ({
  type: 'NotificationLevelSet',
  data: { conversationId: CONV, userId, level: value },
});
const muted = (userId: string, until: string | null): StateEvent => ({
  type: 'ConversationMuted',
  data: { conversationId: CONV, userId, until },
});

const given = (events: StateEvent[] = [], start: { kind?: 'direct' | 'group'; members?: string[] } = {}) => {
  const state = startedState({
    conversationId: CONV,
    kind: start.kind ?? 'group',
    title: null,
    createdBy: 'alice',
    members: start.members ?? ['alice', 'bob', 'carol'],
  });
  for (const e of events) evolve(state, e);
  return {
    state,
    /** A message from alice (unless `over` says otherwise); thenNotifies: `recipient:kind`, sorted. */
    whenSent: (body: string, over: Partial<Sent> = {}) => {
      const records = notificationsFor(
        state,
        { conversationId: CONV, messageId: MSG, senderId: 'alice', body, replyTo: null, sentAt: T, ...over },
        notificationIdFor,
      );
      return {
        records,
        thenNotifies: (expected: string[]) =>
          expect(records.map((r) => `${r.recipientId}:${r.kind}`).sort()).toEqual(expected),
      };
    },
  };
};

const reply = (to: string): Partial<Sent> => ({ replyTo: MSG, replyToSenderId: to });

describe('groups: mentions by default', () => {
  it('a message that addresses nobody notifies nobody', () => given().whenSent('hello all').thenNotifies([]));

  it('notifies whom the body mentions (whole tokens only, API.md §2.4)', () => {
    given().whenSent('hi @bob, and @carolyn').thenNotifies(['bob:mention']);
    given().whenSent('(cc @bob), @carol!').thenNotifies(['bob:mention', 'carol:mention']);
    given().whenSent('x@bob @bob. @bobby').thenNotifies([]);
  });

  it('notifies the author of the message replied to, as a reply; a mention of them wins', () => {
    given().whenSent('agreed', reply('bob')).thenNotifies(['bob:reply']);
    given().whenSent('agreed @bob', reply('bob')).thenNotifies(['bob:mention']);
    given().whenSent('agreed @carol', reply('bob')).thenNotifies(['bob:reply', 'carol:mention']);
  });

  it('notifies members who chose all of every message, kind by what addresses them', () => {
    const g = given([level('bob', 'all'), level('carol', 'all')]);
    g.whenSent('hello').thenNotifies(['bob:message', 'carol:message']);
    g.whenSent('hello @bob', reply('carol')).thenNotifies(['bob:mention', 'carol:reply']);
  });

  it('none: nothing, mentioned or replied to', () =>
    given([level('bob', 'none')])
      .whenSent('@bob?', reply('bob'))
      .thenNotifies([]));

  it('follows level changes: back to mentions stops every-message records', () => {
    given([level('bob', 'all'), level('bob', 'mentions')])
      .whenSent('hello')
      .thenNotifies([]);
    given([level('bob', 'none'), level('bob', 'all')])
      .whenSent('hello')
      .thenNotifies(['bob:message']);
  });
});

describe('direct conversations: all by default', () => {
  const direct = { kind: 'direct' as const, members: ['alice', 'bob'] };

  it('notifies the other member of every message, never the sender', () => {
    given([], direct).whenSent('hi').thenNotifies(['bob:message']);
    given([], direct).whenSent('hi @bob @alice').thenNotifies(['bob:mention']);
    given([], direct).whenSent('hi', { senderId: 'bob' }).thenNotifies(['alice:message']);
  });

  it('mentions or none when the member chose so', () => {
    given([level('bob', 'mentions')], direct)
      .whenSent('hi')
      .thenNotifies([]);
    given([level('bob', 'mentions')], direct)
      .whenSent('hi', reply('bob'))
      .thenNotifies(['bob:reply']);
    given([level('bob', 'none')], direct)
      .whenSent('hi @bob')
      .thenNotifies([]);
  });
});

describe('who can be notified', () => {
  it('never the sender, also when they mention themself or reply to their own message', () =>
    given([level('alice', 'all')])
      .whenSent('note to @alice', reply('alice'))
      .thenNotifies([]));

  it('only members: a mentioned outsider, or a member who left, gets nothing', () => {
    given().whenSent('@mallory look').thenNotifies([]);
    given([level('bob', 'all'), left('bob')])
      .whenSent('hello @bob', reply('bob'))
      .thenNotifies([]);
  });

  it('a level outlives leaving and re-joining, as a mute does', () =>
    given([level('dave', 'all'), joined('dave'), left('dave'), joined('dave')])
      .whenSent('hello')
      .thenNotifies(['dave:message']));

  it('nobody while muted, judged at the send time; again once the mute expired or was lifted', () => {
    const g = given([level('carol', 'all'), muted('bob', '2026-01-01T12:00:00.000Z'), muted('carol', T)]);
    g.whenSent('@bob hi', { sentAt: '2026-01-01T11:59:59.999Z' }).thenNotifies(['carol:message']);
    g.whenSent('@bob hi', { sentAt: '2026-01-01T12:00:00.000Z' }).thenNotifies([
      'bob:mention',
      'carol:message',
    ]);
    given([muted('bob', '2030-01-01T00:00:00.000Z'), muted('bob', null)])
      .whenSent('@bob')
      .thenNotifies(['bob:mention']);
  });
});

describe('cost and records', () => {
  /** A member set that refuses to be walked: only `has` is allowed. */
  const unwalkable = (members: Set<string>): Set<string> =>
    new Proxy(members, {
      get(target, key) {
        if (key === 'has') return target.has.bind(target);
        if (key === 'size') return target.size;
        throw new Error(`the rules walked the member set (${String(key)})`);
      },
    });

  it('a group message never walks the member set: candidates come from the body, the reply and the all-levels', () => {
    const members = ['alice', ...Array.from({ length: 999 }, (_, i) => `u${i}`)];
    const g = given([level('u5', 'all')], { members });
    const state: ConversationState = { ...g.state, members: unwalkable(g.state.members) };
    const sent = (body: string, over: Partial<Sent> = {}) =>
      notificationsFor(
        state,
        { conversationId: CONV, messageId: MSG, senderId: 'alice', body, replyTo: null, sentAt: T, ...over },
        notificationIdFor,
      ).map((r) => `${r.recipientId}:${r.kind}`);
    expect(sent('nobody addressed')).toEqual(['u5:message']);
    expect(sent('hey @u7', reply('u9')).sort()).toEqual(['u5:message', 'u7:mention', 'u9:reply']);
  });

  it('derives stable ids from message and recipient, and previews 200 code points', () => {
    const [a] = given([], { kind: 'direct', members: ['alice', 'bob'] }).whenSent('x').records;
    const [b] = given([], { kind: 'direct', members: ['alice', 'bob'] }).whenSent('😀'.repeat(300)).records;
    expect(a?.notificationId).toBe(b?.notificationId);
    expect(a?.notificationId).toBe(notificationIdFor(CONV, MSG, 'bob'));
    expect(a?.notificationId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(notificationIdFor(CONV, MSG, 'bob')).not.toBe(notificationIdFor(CONV, MSG, 'carol'));
    expect(b).toMatchObject({ actorId: 'alice', createdAt: T, readAt: null, messageId: MSG });
    expect([...(b?.preview ?? '')]).toHaveLength(200);
  });

  it('clears the preview on delete and shows the edit', () => {
    expect(
      previewAfter({
        type: 'MessageDeleted',
        data: { conversationId: CONV, messageId: MSG, deletedBy: 'alice', deletedAt: T },
      }),
    ).toBe('');
    expect(
      previewAfter({
        type: 'MessageEdited',
        data: { conversationId: CONV, messageId: MSG, editorId: 'alice', body: 'fixed', editedAt: T },
      }),
    ).toBe('fixed');
  });
});

describe('reactions (API.md §2.2.1)', () => {
  const reacted = (userId: string, over: Partial<ChatEventOf<'ReactionAdded'>['data']> = {}) => ({
    conversationId: CONV,
    messageId: MSG,
    userId,
    reaction: '👍',
    at: T,
    messageSenderId: 'alice',
    ...over,
  });
  const whenReacted = (state: ConversationState, userId: string, over = {}) =>
    reactionNotificationFor(state, reacted(userId, over), notificationIdFor).map(
      (r) => `${r.recipientId}:${r.kind}:${r.actorId}:${r.preview}`,
    );

  it('notifies the author of another user’s reaction at level all or mentions (group default)', () => {
    expect(whenReacted(given().state, 'bob')).toEqual(['alice:reaction:bob:👍']);
    expect(whenReacted(given([level('alice', 'all')]).state, 'bob', { reaction: 'thumbsup' })).toEqual([
      'alice:reaction:bob:thumbsup',
    ]);
    expect(whenReacted(given([], { kind: 'direct', members: ['alice', 'bob'] }).state, 'bob')).toEqual([
      'alice:reaction:bob:👍',
    ]);
  });

  it('nothing for a reaction to one’s own message, at level none, while muted, or once the author left', () => {
    expect(whenReacted(given().state, 'alice')).toEqual([]);
    expect(whenReacted(given([level('alice', 'none')]).state, 'bob')).toEqual([]);
    expect(whenReacted(given([muted('alice', '2026-01-01T10:00:00.001Z')]).state, 'bob')).toEqual([]);
    expect(whenReacted(given([muted('alice', T)]).state, 'bob')).toEqual(['alice:reaction:bob:👍']);
    expect(whenReacted(given([left('alice')]).state, 'bob')).toEqual([]);
  });

  it('ids name message, author, reactor and reaction: a re-add repeats the id, another reaction does not', () => {
    const id = (userId: string, reaction: string) =>
      reactionNotificationFor(given().state, reacted(userId, { reaction }), notificationIdFor)[0]
        ?.notificationId;
    expect(id('bob', '👍')).toBe(id('bob', '👍'));
    const ids = new Set([
      id('bob', '👍'),
      id('bob', '🎉'),
      id('carol', '👍'),
      notificationIdFor(CONV, MSG, 'alice'),
    ]);
    expect(ids.size).toBe(4);
    const [record] = reactionNotificationFor(given().state, reacted('bob'), notificationIdFor);
    expect(record).toMatchObject({ messageId: MSG, conversationId: CONV, createdAt: T, readAt: null });
  });
});
