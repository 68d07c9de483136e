import { natsSubjects } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { routeEvent } from './routing.js';

// Reports and blocks reach no socket (issue 16): the relay publishes nothing of report streams, and of
// user streams only blocks, as a control message to both users' subjects (the gateway hides presence).

const subjects = natsSubjects('chat');
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
      const block = envelope('user-ann', type, { userId: 'ann', blockedUserId: 'mal' });
      const out = routeEvent(block as never, subjects);
      expect(out.map((p) => p.subject)).toEqual([subjects.user('ann'), subjects.user('mal')]);
      expect(JSON.parse(out[0]!.payload)).toEqual({ type: 'block', event: block });
    }
  });

  it('publishes roles and bans on the conversation subject only', () => {
    const c = '11111111-1111-4111-8111-111111111111';
    const ban = envelope(`conversation-${c}`, 'MemberBanned', { conversationId: c, userId: 'troll' });
    expect(routeEvent(ban as never, subjects).map((p) => p.subject)).toEqual([subjects.conversation(c)]);
  });
});
