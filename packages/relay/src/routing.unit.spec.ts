import { natsSubjects } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { routeEvent } from './routing.js';

// Reports and blocks reach no socket (issue 16): the relay publishes nothing of report or user streams.

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
  it('publishes nothing of a report stream or of a user stream', () => {
    const report = envelope('report-44444444-4444-4444-8444-444444444444', 'MessageReported', {
      reporterId: 'carol',
    });
    expect(routeEvent(report as never, subjects)).toEqual([]);
    const block = envelope('user-ann', 'UserBlocked', { userId: 'ann', blockedUserId: 'mal' });
    expect(routeEvent(block as never, subjects)).toEqual([]);
  });

  it('publishes roles and bans on the conversation subject only', () => {
    const c = '11111111-1111-4111-8111-111111111111';
    const ban = envelope(`conversation-${c}`, 'MemberBanned', { conversationId: c, userId: 'troll' });
    expect(routeEvent(ban as never, subjects).map((p) => p.subject)).toEqual([subjects.conversation(c)]);
  });
});
