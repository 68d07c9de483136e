import type { ChatEventOf, NotificationLevel } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { evolve, type StateEvent, startedState } from './conversation.js';
import { notificationIdFor } from './notification-id.js';
import { notificationsFor } from './rules.js';

// Thread notifications (issue 16): a reply in a thread notifies the thread's participants — its root's
// author and earlier repliers, carried on the event — with kind `thread` at levels `mentions` and `all`.

const CONV = '0b9f2f4e-1c1a-4d1b-9a55-0d5a2f0c7e11';
const ROOT = '5a2b1c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const MSG = '6a2b1c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const T = '2026-01-01T10:00:00.000Z';

type Sent = ChatEventOf<'MessageSent'>['data'];

const level = (userId: string, value: NotificationLevel): StateEvent => ({
  type: 'NotificationLevelSet',
  data: { conversationId: CONV, userId, level: value },
});
const muted = (userId: string, until: string | null): StateEvent => ({
  type: 'ConversationMuted',
  data: { conversationId: CONV, userId, until },
});

const notified = (events: StateEvent[], body: string, over: Partial<Sent>) => {
  const state = startedState({
    conversationId: CONV,
    kind: 'group',
    title: null,
    createdBy: 'alice',
    members: ['alice', 'bob', 'carol', 'dan'],
  });
  for (const e of events) evolve(state, e);
  const sent: Sent = {
    conversationId: CONV,
    messageId: MSG,
    senderId: 'carol',
    body,
    replyTo: null,
    sentAt: T,
    ...over,
  };
  return notificationsFor(state, sent, notificationIdFor)
    .map((r) => `${r.recipientId}:${r.kind}`)
    .sort();
};

const inThread = (participants: string[]): Partial<Sent> => ({
  threadRootId: ROOT,
  threadParticipantIds: participants,
});

describe('thread replies', () => {
  it('notify every participant but the sender, at the group default (mentions)', () => {
    expect(notified([], 'me too', inThread(['alice', 'bob', 'carol']))).toEqual([
      'alice:thread',
      'bob:thread',
    ]);
  });

  it('notify no one who has not taken part, and nobody for a main-timeline message', () => {
    expect(notified([], 'me too', inThread(['alice']))).toEqual(['alice:thread']);
    expect(notified([], 'me too', {})).toEqual([]);
  });

  it('a mention or a reply to their own message wins over thread; all-level members get thread, not message', () => {
    expect(
      notified([], 'ask @bob', { ...inThread(['alice', 'bob']), replyTo: ROOT, replyToSenderId: 'alice' }),
    ).toEqual(['alice:reply', 'bob:mention']);
    expect(notified([level('alice', 'all'), level('dan', 'all')], 'ok', inThread(['alice']))).toEqual([
      'alice:thread',
      'dan:message',
    ]);
  });

  it('level none or a mute: nothing', () => {
    expect(notified([level('alice', 'none')], 'ok', inThread(['alice', 'bob']))).toEqual(['bob:thread']);
    expect(notified([muted('bob', '2030-01-01T00:00:00.000Z')], 'ok', inThread(['alice', 'bob']))).toEqual([
      'alice:thread',
    ]);
  });
});
