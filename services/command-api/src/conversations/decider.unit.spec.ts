import type { ChatEvent } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { readWatermark } from './decider.js';
import { IDEMPOTENCY_MIN_MESSAGES } from './state.js';
import { given, stateOf } from './testing.js';

const C = '11111111-1111-4111-8111-111111111111';
const M1 = '22222222-2222-4222-8222-222222222222';
const M2 = '33333333-3333-4333-8333-333333333333';
const NOW = '2026-01-02T03:04:05.678Z';
const LATER = (ms: number) => new Date(Date.parse(NOW) + ms).toISOString();

const started = (members = ['alice', 'bob', 'carol'], kind: 'group' | 'direct' = 'group'): ChatEvent => ({
  type: 'ConversationStarted',
  data: { conversationId: C, kind, title: kind === 'group' ? 'Team' : null, createdBy: 'alice', members },
});
const sent = (
  messageId: string,
  senderId = 'alice',
  body = 'hi',
  replyTo: string | null = null,
): ChatEvent => ({
  type: 'MessageSent',
  data: { conversationId: C, messageId, senderId, body, replyTo, sentAt: NOW },
});
const deleted = (messageId: string, by = 'alice'): ChatEvent => ({
  type: 'MessageDeleted',
  data: { conversationId: C, messageId, deletedBy: by, deletedAt: NOW },
});
const joined = (userId: string, addedBy = 'alice'): ChatEvent => ({
  type: 'MemberJoined',
  data: { conversationId: C, userId, addedBy },
});
const left = (userId: string, removedBy = userId): ChatEvent => ({
  type: 'MemberLeft',
  data: { conversationId: C, userId, removedBy },
});

const start = (
  over: Partial<{ kind: 'group' | 'direct'; members: string[]; title: string | null; by: string }>,
) =>
  ({
    type: 'StartConversation',
    data: {
      conversationId: C,
      kind: over.kind ?? 'group',
      members: over.members ?? ['bob', 'carol'],
      title: over.title === undefined ? 'Team' : over.title,
      createdBy: over.by ?? 'alice',
    },
  }) as const;

describe('StartConversation', () => {
  it('starts a group with the caller first and duplicates dropped', () =>
    given([])
      .when(start({ members: ['bob', 'alice', 'carol', 'bob'] }))
      .thenAppends([started(['alice', 'bob', 'carol'])]));

  it('starts a direct conversation with exactly one other member and no title', () =>
    given([])
      .when(start({ kind: 'direct', members: ['bob'], title: null }))
      .thenAppends([started(['alice', 'bob'], 'direct')]));

  it('refuses a direct conversation with two others, none, or a title', () => {
    given([])
      .when(start({ kind: 'direct', members: ['bob', 'carol'], title: null }))
      .thenThrows('validation_failed');
    given([])
      .when(start({ kind: 'direct', members: ['alice'], title: null }))
      .thenThrows('validation_failed');
    given([])
      .when(start({ kind: 'direct', members: ['bob'], title: 'x' }))
      .thenThrows('validation_failed', [{ path: ['title'], message: 'a direct conversation has no title' }]);
  });

  it('needs 1..999 other members in a group', () => {
    given([])
      .when(start({ members: ['alice'] }))
      .thenThrows('validation_failed');
    const many = Array.from({ length: 999 }, (_, i) => `u${i}`);
    given([])
      .when(start({ members: many }))
      .thenAppends([started(['alice', ...many])]);
    given([])
      .when(start({ members: [...many, 'one-too-many'] }))
      .thenThrows('validation_failed');
  });

  it('is idempotent for the same content, by either user of a direct pair and in any member order', () => {
    given([started(['alice', 'bob', 'carol'])])
      .when(start({ members: ['carol', 'bob'] }))
      .thenNothing();
    given([started(['alice', 'bob'], 'direct')])
      .when(start({ kind: 'direct', members: ['alice'], title: null, by: 'bob' }))
      .thenNothing();
  });

  it('conflicts on the same id with different content', () => {
    given([started()])
      .when(start({ members: ['bob'] }))
      .thenThrows('conflict');
    given([started()])
      .when(start({ title: 'Other' }))
      .thenThrows('conflict');
  });
});

describe('AddMember', () => {
  it('lets any member add someone', () =>
    given([started()])
      .when({ type: 'AddMember', data: { userId: 'dave', addedBy: 'bob' } })
      .thenAppends([joined('dave', 'bob')]));

  it('does nothing for someone already a member', () =>
    given([started()])
      .when({ type: 'AddMember', data: { userId: 'carol', addedBy: 'bob' } })
      .thenNothing());

  it('refuses direct conversations with 409 and non-members with 404', () => {
    given([started(['alice', 'bob'], 'direct')])
      .when({ type: 'AddMember', data: { userId: 'carol', addedBy: 'alice' } })
      .thenThrows('conflict');
    given([started()])
      .when({ type: 'AddMember', data: { userId: 'x', addedBy: 'mallory' } })
      .thenThrows('not_found');
    given([])
      .when({ type: 'AddMember', data: { userId: 'x', addedBy: 'alice' } })
      .thenThrows('not_found');
  });

  it('refuses the 1,001st member', () => {
    const members = Array.from({ length: 1000 }, (_, i) => (i === 0 ? 'alice' : `u${i}`));
    given([started(members)])
      .when({ type: 'AddMember', data: { userId: 'z', addedBy: 'alice' } })
      .thenThrows('conflict');
  });
});

describe('RemoveMember', () => {
  it('lets a member remove themself', () =>
    given([started()])
      .when({ type: 'RemoveMember', data: { userId: 'bob', removedBy: 'bob' } })
      .thenAppends([left('bob')]));

  it('lets the creator remove others', () =>
    given([started()])
      .when({ type: 'RemoveMember', data: { userId: 'bob', removedBy: 'alice' } })
      .thenAppends([left('bob', 'alice')]));

  it('forbids others removing someone else, but 404 for a non-member target comes first', () => {
    given([started()])
      .when({ type: 'RemoveMember', data: { userId: 'carol', removedBy: 'bob' } })
      .thenThrows('forbidden');
    given([started()])
      .when({ type: 'RemoveMember', data: { userId: 'zed', removedBy: 'bob' } })
      .thenThrows('not_found');
    given([started(), left('carol')])
      .when({ type: 'RemoveMember', data: { userId: 'carol', removedBy: 'alice' } })
      .thenThrows('not_found');
  });

  it('hides the conversation from non-members and removed members', () => {
    given([started()])
      .when({ type: 'RemoveMember', data: { userId: 'bob', removedBy: 'mallory' } })
      .thenThrows('not_found');
    given([started(), left('bob')])
      .when({ type: 'RemoveMember', data: { userId: 'bob', removedBy: 'bob' } })
      .thenThrows('not_found');
  });
});

describe('SendMessage', () => {
  const send = (
    messageId: string,
    over: Partial<{ senderId: string; body: string; replyTo: string | null }> = {},
  ) =>
    ({
      type: 'SendMessage',
      data: {
        messageId,
        senderId: over.senderId ?? 'alice',
        body: over.body ?? 'hi',
        replyTo: over.replyTo ?? null,
        threadRootId: null,
        now: NOW,
      },
    }) as const;

  it('sends a message', () =>
    given([started()])
      .when(send(M1))
      .thenAppends([sent(M1)]));

  it('is idempotent for the same sender, body and replyTo', () =>
    given([started(), sent(M1)])
      .when(send(M1))
      .thenNothing());

  it('conflicts when the messageId is reused with another body, replyTo or sender', () => {
    given([started(), sent(M1)])
      .when(send(M1, { body: 'other' }))
      .thenThrows('conflict');
    given([started(), sent(M1), sent(M2)])
      .when(send(M1, { replyTo: M2 }))
      .thenThrows('conflict');
    given([started(), sent(M1)])
      .when(send(M1, { senderId: 'bob' }))
      .thenThrows('conflict');
  });

  it('keeps idempotency for the last 1,000 messages even when older than 24 h', () => {
    const ids = Array.from({ length: IDEMPOTENCY_MIN_MESSAGES }, (_, i) => `m${i}`);
    const old = ids.map(
      (id): ChatEvent => ({
        type: 'MessageSent',
        data: { conversationId: C, messageId: id, senderId: 'alice', body: 'b', replyTo: null, sentAt: NOW },
      }),
    );
    const muchLater: ChatEvent = {
      type: 'MessageSent',
      data: { ...sent('new').data, sentAt: LATER(48 * 3600 * 1000) } as never,
    };
    const state = stateOf([started(), ...old]);
    expect(state.messages.get('m0')?.sentBody).toBe('b');
    const slid = stateOf([started(), ...old, muchLater]);
    expect(slid.messages.get('m0')?.sentBody).toBeNull();
    expect(slid.messages.get('m1')?.sentBody).toBe('b');
  });

  it('keeps idempotency beyond 1,000 messages for 24 h', () => {
    const events = Array.from({ length: IDEMPOTENCY_MIN_MESSAGES + 5 }, (_, i) => sent(`m${i}`));
    expect(stateOf([started(), ...events]).messages.get('m0')?.sentBody).toBe('hi');
  });

  it('needs replyTo to name a message of the conversation, and names that message’s sender', () => {
    const reply = sent(M2, 'alice', 'hi', M1);
    given([started(), sent(M1, 'bob')])
      .when(send(M2, { replyTo: M1 }))
      .thenAppends([{ ...reply, data: { ...reply.data, replyToSenderId: 'bob' } } as ChatEvent]);
    given([started()])
      .when(send(M2, { replyTo: M1 }))
      .thenThrows('validation_failed', [{ path: ['replyTo'], message: expect.any(String) }]);
  });

  it('hides the conversation from non-members', () => {
    given([started()])
      .when(send(M1, { senderId: 'mallory' }))
      .thenThrows('not_found');
    given([]).when(send(M1)).thenThrows('not_found');
  });

  it("moves the sender's own read watermark", () => {
    const state = stateOf([started(), sent(M1, 'bob'), sent(M2, 'alice')]);
    expect(readWatermark(state, 'alice')).toBe(2);
    expect(readWatermark(state, 'bob')).toBe(1);
    expect(readWatermark(state, 'carol')).toBe(0);
  });
});

describe('EditMessage and DeleteMessage', () => {
  const edit = (by = 'alice', messageId = M1) =>
    ({ type: 'EditMessage', data: { messageId, editorId: by, body: 'new', now: NOW } }) as const;
  const del = (by = 'alice', messageId = M1) =>
    ({ type: 'DeleteMessage', data: { messageId, deletedBy: by, now: NOW } }) as const;

  it('lets the sender edit', () =>
    given([started(), sent(M1)])
      .when(edit())
      .thenAppends([
        {
          type: 'MessageEdited',
          data: { conversationId: C, messageId: M1, editorId: 'alice', body: 'new', editedAt: NOW },
        },
      ]));

  it('lets the sender delete', () =>
    given([started(), sent(M1)])
      .when(del())
      .thenAppends([deleted(M1)]));

  it('forbids others', () => {
    given([started(), sent(M1)])
      .when(edit('bob'))
      .thenThrows('forbidden');
    given([started(), sent(M1)])
      .when(del('bob'))
      .thenThrows('forbidden');
  });

  it('answers 404 for unknown messages and non-members', () => {
    given([started()]).when(edit()).thenThrows('not_found');
    given([started()]).when(del()).thenThrows('not_found');
    given([started(), sent(M1)])
      .when(edit('mallory'))
      .thenThrows('not_found');
  });

  it('conflicts on editing a deleted message; deleting again does nothing and keeps the first delete', () => {
    given([started(), sent(M1), deleted(M1)])
      .when(edit())
      .thenThrows('conflict');
    const again = given([started(), sent(M1), deleted(M1)]).when(del());
    again.thenNothing();
    expect(again.state.messages.get(M1)?.deleted?.seq).toBe(2);
  });
});

describe('MarkRead', () => {
  const read = (upToSeq: number, userId = 'bob') =>
    ({ type: 'MarkRead', data: { userId, upToSeq, now: NOW } }) as const;
  const receipt = (upToSeq: number, userId = 'bob'): ChatEvent => ({
    type: 'ConversationRead',
    data: { conversationId: C, userId, upToSeq, readAt: NOW },
  });

  it('moves the watermark forward', () =>
    given([started(), sent(M1)])
      .when(read(1))
      .thenAppends([receipt(1)]));

  it('does nothing for a lower or equal value', () => {
    given([started(), sent(M1), sent(M2), receipt(2)])
      .when(read(1))
      .thenNothing();
    given([started(), sent(M1), sent(M2), receipt(2)])
      .when(read(2))
      .thenNothing();
  });

  it('starts at 0 for initial members and at the join seq for later joiners', () => {
    given([started(), sent(M1)])
      .when(read(0))
      .thenNothing();
    const state = stateOf([started(), sent(M1), joined('dave')]);
    expect(readWatermark(state, 'dave')).toBe(2);
    given([started(), sent(M1), joined('dave')])
      .when(read(1, 'dave'))
      .thenNothing();
  });

  it('refuses upToSeq past the last seq', () =>
    given([started(), sent(M1)])
      .when(read(2))
      .thenThrows('validation_failed', [{ path: ['upToSeq'], message: expect.any(String) }]));

  it('hides the conversation from non-members', () =>
    given([started()]).when(read(0, 'mallory')).thenThrows('not_found'));
});

describe('StartTyping', () => {
  const typing = (now: string, userId = 'bob') => ({ type: 'StartTyping', data: { userId, now } }) as const;
  const typed = (at: string, userId = 'bob'): ChatEvent => ({
    type: 'TypingStarted',
    data: { conversationId: C, userId, at },
  });

  it('appends the first typing event', () =>
    given([started()])
      .when(typing(NOW))
      .thenAppends([typed(NOW)]));

  it('throttles to one per 3 s per user', () => {
    given([started(), typed(NOW)])
      .when(typing(LATER(2999)))
      .thenNothing();
    given([started(), typed(NOW)])
      .when(typing(LATER(3000)))
      .thenAppends([typed(LATER(3000))]);
    given([started(), typed(NOW)])
      .when(typing(LATER(10), 'carol'))
      .thenAppends([typed(LATER(10), 'carol')]);
  });

  it('hides the conversation from non-members', () =>
    given([started()]).when(typing(NOW, 'mallory')).thenThrows('not_found'));
});

describe('Mute', () => {
  it('mutes and unmutes for members', () => {
    given([started()])
      .when({ type: 'Mute', data: { userId: 'bob', until: NOW } })
      .thenAppends([{ type: 'ConversationMuted', data: { conversationId: C, userId: 'bob', until: NOW } }]);
    given([started()])
      .when({ type: 'Mute', data: { userId: 'bob', until: null } })
      .thenAppends([{ type: 'ConversationMuted', data: { conversationId: C, userId: 'bob', until: null } }]);
  });

  it('hides the conversation from non-members', () =>
    given([started()])
      .when({ type: 'Mute', data: { userId: 'mallory', until: null } })
      .thenThrows('not_found'));
});

describe('RequireMember (before a command on the user’s own stream)', () => {
  it('appends nothing for a member and refuses anyone else with 404, a member who left included', () => {
    given([started()])
      .when({ type: 'RequireMember', data: { userId: 'bob' } })
      .thenNothing();
    given([started(), left('bob')])
      .when({ type: 'RequireMember', data: { userId: 'bob' } })
      .thenThrows('not_found');
    given([])
      .when({ type: 'RequireMember', data: { userId: 'bob' } })
      .thenThrows('not_found');
  });
});

describe('AddReaction and RemoveReaction', () => {
  const react = (type: 'AddReaction' | 'RemoveReaction', userId = 'bob', reaction = '👍', messageId = M1) =>
    ({ type, data: { messageId, userId, reaction, now: NOW } }) as const;
  const added = (userId = 'bob', reaction = '👍'): ChatEvent => ({
    type: 'ReactionAdded',
    data: { conversationId: C, messageId: M1, userId, reaction, at: NOW, messageSenderId: 'alice' },
  });
  const removed = (userId = 'bob', reaction = '👍'): ChatEvent => ({
    type: 'ReactionRemoved',
    data: { conversationId: C, messageId: M1, userId, reaction, at: NOW },
  });

  it('adds a reaction, naming the message’s author; also the author’s own', () => {
    given([started(), sent(M1)])
      .when(react('AddReaction'))
      .thenAppends([added()]);
    given([started(), sent(M1)])
      .when(react('AddReaction', 'alice'))
      .thenAppends([added('alice')]);
    given([started(), sent(M1), added()])
      .when(react('AddReaction', 'bob', '🎉'))
      .thenAppends([added('bob', '🎉')]);
    given([started(), sent(M1), added()])
      .when(react('AddReaction', 'carol'))
      .thenAppends([added('carol')]);
  });

  it('appends nothing for a reaction the user has, or removing one they have not', () => {
    given([started(), sent(M1), added()])
      .when(react('AddReaction'))
      .thenNothing();
    given([started(), sent(M1)])
      .when(react('RemoveReaction'))
      .thenNothing();
    given([started(), sent(M1), added(), removed()])
      .when(react('RemoveReaction'))
      .thenNothing();
    given([started(), sent(M1), added('carol')])
      .when(react('RemoveReaction'))
      .thenNothing();
  });

  it('removes a reaction the user has; adding it again appends again', () => {
    given([started(), sent(M1), added()])
      .when(react('RemoveReaction'))
      .thenAppends([removed()]);
    given([started(), sent(M1), added(), removed()])
      .when(react('AddReaction'))
      .thenAppends([added()]);
  });

  it('remembers where each user’s reaction was last set', () => {
    const state = stateOf([started(), sent(M1), added(), added('carol'), removed()]);
    const reactions = state.messages.get(M1)?.reactions?.get('👍');
    expect(reactions?.get('bob')).toEqual({ present: false, at: { seq: 4, position: expect.any(String) } });
    expect(reactions?.get('carol')).toEqual({ present: true, at: { seq: 3, position: expect.any(String) } });
    expect(state.lastSeq).toBe(4);
  });

  it('is 404 for an unknown or deleted message and for non-members, either way', () => {
    for (const type of ['AddReaction', 'RemoveReaction'] as const) {
      given([started(), sent(M1)])
        .when(react(type, 'bob', '👍', M2))
        .thenThrows('not_found');
      given([started(), sent(M1), added(), deleted(M1)])
        .when(react(type))
        .thenThrows('not_found');
      given([started(), sent(M1)])
        .when(react(type, 'mallory'))
        .thenThrows('not_found');
      given([started(), sent(M1), left('bob')])
        .when(react(type))
        .thenThrows('not_found');
    }
  });
});
