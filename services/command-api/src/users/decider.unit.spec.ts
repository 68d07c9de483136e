import { type ChatEvent, eventIssues } from '@chat/events';
import { describe, expect, it } from 'vitest';
import type { UserCommand } from './commands.js';
import { decideUser, evolveUser } from './decider.js';
import { initialUserState } from './state.js';

const C = '11111111-1111-4111-8111-111111111111';
const D = '22222222-2222-4222-8222-222222222222';
const position = (n: number) => n.toString(16).padStart(32, '0');

/** given/when/then over the user decider: events of the user's stream get consecutive revisions. */
const given = (events: readonly ChatEvent[]) => {
  const state = events.reduce(
    (s, event, i) => evolveUser(s, event, { seq: i, position: position(i) }),
    initialUserState(),
  );
  return {
    state,
    when: (command: UserCommand) => ({
      thenAppends: (expected: ChatEvent[]) => {
        const appended = decideUser(command, state);
        expect(appended).toEqual(expected);
        for (const event of appended) expect(eventIssues(event)).toEqual([]);
      },
      thenNothing: () => expect(decideUser(command, state)).toEqual([]),
    }),
  };
};

const level = (conversationId: string, value: 'all' | 'mentions' | 'none'): ChatEvent => ({
  type: 'NotificationLevelSet',
  data: { conversationId, userId: 'bob', level: value },
});
const set = (conversationId: string, value: 'all' | 'mentions' | 'none'): UserCommand => ({
  type: 'SetNotificationLevel',
  data: { conversationId, userId: 'bob', level: value },
});
const muted: ChatEvent = {
  type: 'ConversationMuted',
  data: { conversationId: C, userId: 'bob', until: null },
};

describe('SetNotificationLevel', () => {
  it('appends the first level set for a conversation, the default included (no earlier event to answer with)', () => {
    given([])
      .when(set(C, 'mentions'))
      .thenAppends([level(C, 'mentions')]);
    given([muted])
      .when(set(C, 'all'))
      .thenAppends([level(C, 'all')]);
  });

  it('appends nothing when the level is already set to it, and remembers where it was set', () => {
    const g = given([level(C, 'none'), muted, level(D, 'all')]);
    g.when(set(C, 'none')).thenNothing();
    expect(g.state.levels.get(C)).toEqual({ level: 'none', at: { seq: 0, position: position(0) } });
  });

  it('appends a change, also back to a level set before, judged per conversation', () => {
    given([level(C, 'none'), level(C, 'all')])
      .when(set(C, 'none'))
      .thenAppends([level(C, 'none')]);
    given([level(D, 'none')])
      .when(set(C, 'none'))
      .thenAppends([level(C, 'none')]);
  });
});
