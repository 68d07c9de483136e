import type { ChatEvent } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { given } from './testing.js';

// Threads (issue 16): a SendMessage with `threadRootId` replies in the thread of that root message.

const C = '11111111-1111-4111-8111-111111111111';
const ROOT = '22222222-2222-4222-8222-222222222222';
const R1 = '33333333-3333-4333-8333-333333333333';
const R2 = '44444444-4444-4444-8444-444444444444';
const OTHER = '55555555-5555-4555-8555-555555555555';
const NOW = '2026-01-02T03:04:05.678Z';

const started: ChatEvent = {
  type: 'ConversationStarted',
  data: {
    conversationId: C,
    kind: 'group',
    title: 'Team',
    createdBy: 'alice',
    members: ['alice', 'bob', 'carol'],
  },
};
const sent = (
  messageId: string,
  senderId: string,
  thread?: { root: string; participants: string[] },
): ChatEvent => ({
  type: 'MessageSent',
  data: {
    conversationId: C,
    messageId,
    senderId,
    body: 'hi',
    replyTo: null,
    sentAt: NOW,
    ...(thread ? { threadRootId: thread.root, threadParticipantIds: thread.participants } : {}),
  },
});
const send = (messageId: string, senderId: string, threadRootId: string | null) =>
  ({
    type: 'SendMessage',
    data: { messageId, senderId, body: 'hi', replyTo: null, threadRootId, now: NOW },
  }) as const;

describe('SendMessage in a thread', () => {
  it('names the root and the participants so far: the root’s author first', () =>
    given([started, sent(ROOT, 'alice')])
      .when(send(R1, 'bob', ROOT))
      .thenAppends([sent(R1, 'bob', { root: ROOT, participants: ['alice'] })]));

  it('adds each replier once, in the order of their first reply', () =>
    given([
      started,
      sent(ROOT, 'alice'),
      sent(R1, 'bob', { root: ROOT, participants: ['alice'] }),
      sent(R2, 'bob', { root: ROOT, participants: ['alice', 'bob'] }),
    ])
      .when(send(OTHER, 'carol', ROOT))
      .thenAppends([sent(OTHER, 'carol', { root: ROOT, participants: ['alice', 'bob'] })]));

  it('refuses a root that is not a message of this conversation (400)', () =>
    given([started, sent(ROOT, 'alice')])
      .when(send(R1, 'bob', OTHER))
      .thenThrows('validation_failed', [{ path: ['threadRootId'], message: expect.any(String) }]));

  it('refuses a thread reply as root: threads do not nest (400)', () =>
    given([started, sent(ROOT, 'alice'), sent(R1, 'bob', { root: ROOT, participants: ['alice'] })])
      .when(send(R2, 'carol', R1))
      .thenThrows('validation_failed', [{ path: ['threadRootId'], message: expect.any(String) }]));

  it('refuses a deleted root (404)', () =>
    given([
      started,
      sent(ROOT, 'alice'),
      {
        type: 'MessageDeleted',
        data: { conversationId: C, messageId: ROOT, deletedBy: 'alice', deletedAt: NOW },
      },
    ])
      .when(send(R1, 'bob', ROOT))
      .thenThrows('not_found'));

  it('refuses a non-member before looking at the root (404)', () =>
    given([started, sent(ROOT, 'alice')])
      .when(send(R1, 'mallory', ROOT))
      .thenThrows('not_found'));

  it('is idempotent with the same root, and conflicts with another root or none', () => {
    const history = [
      started,
      sent(ROOT, 'alice'),
      sent(OTHER, 'alice'),
      sent(R1, 'bob', { root: ROOT, participants: ['alice'] }),
    ];
    given(history)
      .when(send(R1, 'bob', ROOT))
      .thenNothing();
    given(history)
      .when(send(R1, 'bob', OTHER))
      .thenThrows('conflict');
    given(history)
      .when(send(R1, 'bob', null))
      .thenThrows('conflict');
  });

  it('a main-timeline message carries no thread fields', () =>
    given([started, sent(ROOT, 'alice')])
      .when(send(R1, 'bob', null))
      .thenAppends([sent(R1, 'bob')]));
});
