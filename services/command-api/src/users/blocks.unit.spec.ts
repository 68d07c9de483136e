import type { ChatEvent } from '@chat/events';
import { describe, expect, it } from 'vitest';
import type { UserCommand } from './commands.js';
import { decideUser, evolveUser } from './decider.js';
import { initialUserState } from './state.js';

// Blocking on the blocker's stream (issue 16): block, unblock, and the check before a direct message.

const NOW = '2026-01-02T03:04:05.678Z';
const stateOf = (events: readonly ChatEvent[]) =>
  events.reduce(
    (s, e, i) => evolveUser(s, e, { seq: i, position: i.toString(16).padStart(32, '0') }),
    initialUserState(),
  );
const blocked = (target = 'mallory'): ChatEvent => ({
  type: 'UserBlocked',
  data: { userId: 'alice', blockedUserId: target, at: NOW },
});
const unblocked = (target = 'mallory'): ChatEvent => ({
  type: 'UserUnblocked',
  data: { userId: 'alice', blockedUserId: target, at: NOW },
});
const block = (target = 'mallory'): UserCommand => ({
  type: 'BlockUser',
  data: { userId: 'alice', blockedUserId: target, now: NOW },
});
const unblock = (target = 'mallory'): UserCommand => ({
  type: 'UnblockUser',
  data: { userId: 'alice', blockedUserId: target, now: NOW },
});
const check = (other = 'mallory'): UserCommand => ({
  type: 'RequireNotBlocking',
  data: { userId: 'alice', otherUserId: other },
});
const refusal = (command: UserCommand, events: readonly ChatEvent[]) => {
  try {
    decideUser(command, stateOf(events));
  } catch (err) {
    return err;
  }
  return undefined;
};

describe('blocks', () => {
  it('blocks once; again appends nothing; blocking yourself is refused', () => {
    expect(decideUser(block(), stateOf([]))).toEqual([blocked()]);
    expect(decideUser(block(), stateOf([blocked()]))).toEqual([]);
    expect(decideUser(block(), stateOf([blocked(), unblocked()]))).toEqual([blocked()]);
    expect(refusal(block('alice'), [])).toMatchObject({ code: 'validation_failed' });
  });

  it('unblocks a block; again appends nothing; never blocked: 404', () => {
    expect(decideUser(unblock(), stateOf([blocked()]))).toEqual([unblocked()]);
    expect(decideUser(unblock(), stateOf([blocked(), unblocked()]))).toEqual([]);
    expect(refusal(unblock(), [blocked('bob')])).toMatchObject({ code: 'not_found' });
  });

  it('refuses a blocked user (403, a message naming no block) and nobody else, and no longer once unblocked', () => {
    expect(refusal(check(), [blocked()])).toMatchObject({
      code: 'forbidden',
      message: 'you cannot message this user',
    });
    expect(decideUser(check('bob'), stateOf([blocked()]))).toEqual([]);
    expect(decideUser(check(), stateOf([blocked(), unblocked()]))).toEqual([]);
  });
});
