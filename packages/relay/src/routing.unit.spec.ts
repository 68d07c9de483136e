import { natsSubjects } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { headsOf } from './relay.js';
import { routeEvent } from './routing.js';

// Reports and blocks reach no socket (issue 16): the relay publishes nothing of report streams, and of
// user streams only blocks, as a control message to both users' subjects (the gateway hides presence).

const subjects = natsSubjects('chat');
const at = '2026-01-01T00:00:00.000Z';
const c = '11111111-1111-4111-8111-111111111111';
const envelope = (streamId: string, type: string, data: Record<string, unknown>) => ({
  id: '00000000-0000-4000-8000-000000000000',
  streamId,
  revision: 0,
  position: '0'.repeat(32),
  occurredAt: '2026-01-01T00:00:00.000Z',
  type,
  data,
  metadata: {},
});

describe('routeEvent for moderation', () => {
  it('publishes nothing of a report stream, nor of a user stream but its blocks', () => {
    const report = envelope('report-44444444-4444-4444-8444-444444444444', 'MessageReported', {
      reporterId: 'carol',
    });
    expect(routeEvent(report as never, subjects)).toEqual([]);
    const level = envelope('user-ann', 'NotificationLevelSet', {
      userId: 'ann',
      conversationId: 'c',
      level: 'all',
    });
    expect(routeEvent(level as never, subjects)).toEqual([]);
  });

  it('publishes a block and an unblock as a control message to both users’ subjects', () => {
    for (const type of ['UserBlocked', 'UserUnblocked']) {
      const block = envelope('user-ann', type, { userId: 'ann', blockedUserId: 'mal', at });
      const out = routeEvent(block as never, subjects);
      expect(out.map((p) => p.subject)).toEqual([subjects.user('ann'), subjects.user('mal')]);
      expect(JSON.parse(out[0]!.payload)).toEqual({ type: 'block', event: block });
    }
  });

  it('publishes roles and bans on the conversation subject only', () => {
    const ban = envelope(`conversation-${c}`, 'MemberBanned', { conversationId: c, userId: 'troll' });
    expect(routeEvent(ban as never, subjects).map((p) => p.subject)).toEqual([subjects.conversation(c)]);
  });
});

describe('routeEvent by the relay trait of @chat/events', () => {
  const subjectsOf = (streamId: string, type: string, data: Record<string, unknown>) =>
    routeEvent(envelope(streamId, type, data) as never, subjects).map((p) => p.subject);

  it('publishes a membership change also to the subjects of the members it changes', () => {
    const started = {
      conversationId: c,
      kind: 'group',
      title: null,
      createdBy: 'ann',
      members: ['bob', 'ann'],
    };
    expect(subjectsOf(`conversation-${c}`, 'ConversationStarted', started)).toEqual([
      subjects.conversation(c),
      subjects.user('ann'),
      subjects.user('bob'),
    ]);
    const left = { conversationId: c, userId: 'bob', removedBy: 'ann' };
    expect(subjectsOf(`conversation-${c}`, 'MemberLeft', left)).toEqual([
      subjects.conversation(c),
      subjects.user('bob'),
    ]);
    const out = routeEvent(envelope(`conversation-${c}`, 'MemberLeft', left) as never, subjects);
    expect(JSON.parse(out[1]!.payload)).toEqual({ type: 'membership', event: JSON.parse(out[0]!.payload) });
  });

  it('publishes a membership change whose data does not parse on the conversation subject only', () => {
    expect(subjectsOf(`conversation-${c}`, 'MemberJoined', { conversationId: c, userId: 7 })).toEqual([
      subjects.conversation(c),
    ]);
  });

  it('publishes receipts, typing and types of later versions on the conversation subject', () => {
    const read = { conversationId: c, userId: 'ann', upToSeq: 3, readAt: at };
    expect(subjectsOf(`receipts-${c}`, 'ConversationRead', read)).toEqual([subjects.conversation(c)]);
    expect(subjectsOf(`typing-${c}`, 'TypingStarted', { conversationId: c, userId: 'ann', at })).toEqual([
      subjects.conversation(c),
    ]);
    expect(subjectsOf(`conversation-${c}`, 'PollCreated', { conversationId: c })).toEqual([
      subjects.conversation(c),
    ]);
    expect(subjectsOf('user-ann', 'PollVoted', { userId: 'ann' })).toEqual([]);
  });
});

// LIVE_PUBLISH_FROM=command-api: the writer publishes a conversation stream's events itself; the relay
// keeps the membership news (a gateway without the conversation learns of a join from it) and what no
// writer publishes (receipts, typing), and sends each conversation's last seq per batch instead.
describe('routeEvent and headsOf when the writer publishes conversation events', () => {
  const d = '22222222-2222-4222-8222-222222222222';
  const writerPublishes = { conversationSubject: false };
  const subjectsOf = (streamId: string, type: string, data: Record<string, unknown>) =>
    routeEvent(envelope(streamId, type, data) as never, subjects, writerPublishes).map((p) => p.subject);

  it('publishes of a conversation stream only the membership news, and receipts and typing as before', () => {
    expect(subjectsOf(`conversation-${c}`, 'MessageSent', { conversationId: c, senderId: 'ann' })).toEqual(
      [],
    );
    const joined = { conversationId: c, userId: 'bob', addedBy: 'ann' };
    expect(subjectsOf(`conversation-${c}`, 'MemberJoined', joined)).toEqual([subjects.user('bob')]);
    const read = { conversationId: c, userId: 'ann', upToSeq: 3, readAt: at };
    expect(subjectsOf(`receipts-${c}`, 'ConversationRead', read)).toEqual([subjects.conversation(c)]);
    expect(subjectsOf(`typing-${c}`, 'TypingStarted', { conversationId: c, userId: 'ann', at })).toEqual([
      subjects.conversation(c),
    ]);
  });

  it("heads: each conversation stream's last seq in the batch, nothing of other streams", () => {
    const event = (streamId: string, revision: number) => ({ ...envelope(streamId, 'X', {}), revision });
    const batch = [
      event(`conversation-${c}`, 4),
      event(`receipts-${d}`, 9),
      event(`conversation-${d}`, 0),
      event(`conversation-${c}`, 5),
      event('user-ann', 7),
    ];
    expect(JSON.parse(headsOf(batch as never)!)).toEqual({ heads: { [c]: 5, [d]: 0 } });
    expect(headsOf([event(`receipts-${c}`, 2), event('user-ann', 1)] as never)).toBeNull();
  });
});
