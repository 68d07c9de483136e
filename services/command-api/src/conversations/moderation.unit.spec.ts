import type { ChatEvent } from '@chat/events';
import { describe, expect, it } from 'vitest';
import { roleOf } from './moderation.js';
import { given, stateOf } from './testing.js';

// Moderation rules of the conversation decider (issue 16): who may change roles, ban, remove and
// delete others' messages, and that a ban keeps a user out until it is lifted.

const C = '11111111-1111-4111-8111-111111111111';
const M1 = '22222222-2222-4222-8222-222222222222';
const NOW = '2026-01-02T03:04:05.678Z';

// alice owns the group; bob is made an admin; carol and dave are members.
const started = (kind: 'group' | 'direct' = 'group'): ChatEvent => ({
  type: 'ConversationStarted',
  data: {
    conversationId: C,
    kind,
    title: kind === 'group' ? 'Team' : null,
    createdBy: 'alice',
    members: kind === 'group' ? ['alice', 'bob', 'carol', 'dave'] : ['alice', 'bob'],
  },
});
const role = (userId: string, value: 'admin' | 'member', changedBy = 'alice'): ChatEvent => ({
  type: 'MemberRoleChanged',
  data: { conversationId: C, userId, role: value, changedBy },
});
const left = (userId: string, removedBy: string): ChatEvent => ({
  type: 'MemberLeft',
  data: { conversationId: C, userId, removedBy },
});
const banned = (userId: string, bannedBy = 'alice'): ChatEvent => ({
  type: 'MemberBanned',
  data: { conversationId: C, userId, bannedBy, at: NOW },
});
const unbanned = (userId: string, unbannedBy = 'alice'): ChatEvent => ({
  type: 'MemberUnbanned',
  data: { conversationId: C, userId, unbannedBy, at: NOW },
});
const sent = (senderId: string): ChatEvent => ({
  type: 'MessageSent',
  data: { conversationId: C, messageId: M1, senderId, body: 'hi', replyTo: null, sentAt: NOW },
});
const group = [started(), role('bob', 'admin')];

const setRole = (userId: string, value: 'admin' | 'member', changedBy: string) =>
  ({ type: 'SetMemberRole', data: { userId, role: value, changedBy } }) as const;
const ban = (userId: string, bannedBy: string) =>
  ({ type: 'BanMember', data: { userId, bannedBy, now: NOW } }) as const;
const unban = (userId: string, unbannedBy: string) =>
  ({ type: 'UnbanMember', data: { userId, unbannedBy, now: NOW } }) as const;

describe('roles', () => {
  it('the creator is the owner, promoted members admins, everyone else members; leaving drops the role', () => {
    const state = stateOf(group);
    expect(['alice', 'bob', 'carol', 'mallory'].map((u) => roleOf(state, u))).toEqual([
      'owner',
      'admin',
      'member',
      undefined,
    ]);
    expect(
      roleOf(
        stateOf([
          ...group,
          left('bob', 'bob'),
          { type: 'MemberJoined', data: { conversationId: C, userId: 'bob', addedBy: 'carol' } },
        ]),
        'bob',
      ),
    ).toBe('member');
  });

  it('the owner promotes and demotes; the same role again appends nothing', () => {
    given([started()])
      .when(setRole('carol', 'admin', 'alice'))
      .thenAppends([role('carol', 'admin')]);
    given(group)
      .when(setRole('bob', 'member', 'alice'))
      .thenAppends([role('bob', 'member')]);
    given(group)
      .when(setRole('bob', 'admin', 'alice'))
      .thenNothing();
    given([started()])
      .when(setRole('carol', 'member', 'alice'))
      .thenNothing();
  });

  it('a member or an admin cannot change roles (403); a non-member gets 404', () => {
    given(group)
      .when(setRole('dave', 'admin', 'carol'))
      .thenThrows('forbidden');
    given(group)
      .when(setRole('dave', 'admin', 'bob'))
      .thenThrows('forbidden');
    given(group)
      .when(setRole('dave', 'admin', 'mallory'))
      .thenThrows('not_found');
  });

  it("refuses a non-member target (404), the owner's own role (409) and direct conversations (409)", () => {
    given(group)
      .when(setRole('zed', 'admin', 'alice'))
      .thenThrows('not_found');
    given(group)
      .when(setRole('alice', 'member', 'alice'))
      .thenThrows('conflict');
    given([started('direct')])
      .when(setRole('bob', 'admin', 'alice'))
      .thenThrows('conflict');
  });
});

describe('deleting others’ messages', () => {
  const del = (deletedBy: string) =>
    ({ type: 'DeleteMessage', data: { messageId: M1, deletedBy, now: NOW } }) as const;
  const deleted = (deletedBy: string): ChatEvent => ({
    type: 'MessageDeleted',
    data: { conversationId: C, messageId: M1, deletedBy, deletedAt: NOW },
  });

  it('an admin and the owner delete any message; deletedBy names them', () => {
    given([...group, sent('carol')])
      .when(del('bob'))
      .thenAppends([deleted('bob')]);
    given([...group, sent('bob')])
      .when(del('alice'))
      .thenAppends([deleted('alice')]);
  });

  it('a member cannot delete someone else’s message, nor can an admin once demoted', () => {
    given([...group, sent('dave')])
      .when(del('carol'))
      .thenThrows('forbidden');
    given([...group, role('bob', 'member'), sent('dave')])
      .when(del('bob'))
      .thenThrows('forbidden');
  });
});

describe('removing members', () => {
  const remove = (userId: string, removedBy: string) =>
    ({ type: 'RemoveMember', data: { userId, removedBy } }) as const;

  it('an admin removes members; the owner removes admins', () => {
    given(group)
      .when(remove('carol', 'bob'))
      .thenAppends([left('carol', 'bob')]);
    given(group)
      .when(remove('bob', 'alice'))
      .thenAppends([left('bob', 'alice')]);
  });

  it('an admin cannot remove the owner or another admin; a member cannot remove anyone else', () => {
    given(group).when(remove('alice', 'bob')).thenThrows('forbidden');
    given([...group, role('carol', 'admin')])
      .when(remove('carol', 'bob'))
      .thenThrows('forbidden');
    given(group).when(remove('dave', 'carol')).thenThrows('forbidden');
  });
});

describe('bans', () => {
  it('a ban of a member removes them first, then bans; again: nothing', () => {
    given(group)
      .when(ban('carol', 'bob'))
      .thenAppends([left('carol', 'bob')]);
    given([...group, left('carol', 'bob')])
      .when(ban('carol', 'bob'))
      .thenAppends([banned('carol', 'bob')]);
    given([...group, left('carol', 'bob'), banned('carol', 'bob')])
      .when(ban('carol', 'alice'))
      .thenNothing();
  });

  it('bans someone who is not a member yet', () =>
    given(group)
      .when(ban('mallory', 'alice'))
      .thenAppends([banned('mallory')]));

  it('a member cannot ban (403); an admin cannot ban the owner or an admin; nobody bans themself', () => {
    given(group).when(ban('dave', 'carol')).thenThrows('forbidden');
    given(group).when(ban('alice', 'bob')).thenThrows('forbidden');
    given([...group, role('carol', 'admin')])
      .when(ban('carol', 'bob'))
      .thenThrows('forbidden');
    given(group).when(ban('alice', 'alice')).thenThrows('conflict');
    given(group).when(ban('dave', 'mallory')).thenThrows('not_found');
    given([started('direct')])
      .when(ban('bob', 'alice'))
      .thenThrows('conflict');
  });

  it('a banned user cannot be added back until unbanned', () => {
    const add = { type: 'AddMember', data: { userId: 'carol', addedBy: 'dave' } } as const;
    const wasBanned = [...group, left('carol', 'bob'), banned('carol', 'bob')];
    given(wasBanned).when(add).thenThrows('forbidden');
    given([...wasBanned, unbanned('carol')])
      .when(add)
      .thenAppends([{ type: 'MemberJoined', data: { conversationId: C, userId: 'carol', addedBy: 'dave' } }]);
  });

  it('owner and admins lift bans; again: nothing; never banned: 404; a member: 403', () => {
    const wasBanned = [...group, banned('mallory')];
    given(wasBanned)
      .when(unban('mallory', 'bob'))
      .thenAppends([unbanned('mallory', 'bob')]);
    given([...wasBanned, unbanned('mallory')])
      .when(unban('mallory', 'alice'))
      .thenNothing();
    given(group).when(unban('mallory', 'alice')).thenThrows('not_found');
    given(wasBanned).when(unban('mallory', 'carol')).thenThrows('forbidden');
  });
});

describe('reports and removal of reported messages', () => {
  it('members may report a live message; non-members get 404, as for a deleted or unknown message', () => {
    const require = (userId: string) =>
      ({ type: 'RequireReportable', data: { userId, messageId: M1 } }) as const;
    given([...group, sent('dave')])
      .when(require('carol'))
      .thenNothing();
    given([...group, sent('dave')])
      .when(require('mallory'))
      .thenThrows('not_found');
    given(group).when(require('carol')).thenThrows('not_found');
    given([
      ...group,
      sent('dave'),
      {
        type: 'MessageDeleted',
        data: { conversationId: C, messageId: M1, deletedBy: 'dave', deletedAt: NOW },
      },
    ])
      .when(require('carol'))
      .thenThrows('not_found');
  });

  it('a platform admin resolving with removed deletes the message once, member or not', () => {
    const remove = {
      type: 'RemoveReportedMessage',
      data: { messageId: M1, deletedBy: 'moderator', now: NOW },
    } as const;
    const deleted: ChatEvent = {
      type: 'MessageDeleted',
      data: { conversationId: C, messageId: M1, deletedBy: 'moderator', deletedAt: NOW },
    };
    given([...group, sent('dave')])
      .when(remove)
      .thenAppends([deleted]);
    given([...group, sent('dave'), deleted])
      .when(remove)
      .thenNothing();
  });
});
