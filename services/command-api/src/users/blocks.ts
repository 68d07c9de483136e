import { ChatError, type ChatEvent } from '@chat/events';
import type { Recorded } from '../conversations/state.js';
import type { UserState } from './state.js';

// Blocking (issue 16, part 4), decided on the blocker's own stream `user-<userId>`: its expected
// revision orders a block against an unblock, and the check before a direct message reads the
// blocker's state from the same writer.

export type BlockRecord = { blocked: boolean; at: Recorded };

export type BlockCommand =
  | { type: 'BlockUser'; data: { userId: string; blockedUserId: string; now: string } }
  | { type: 'UnblockUser'; data: { userId: string; blockedUserId: string; now: string } }
  /**
   * Appends nothing: refuses when `userId` (whose stream this is) blocks `otherUserId` — asked before
   * `otherUserId` starts or writes to their direct conversation.
   */
  | { type: 'RequireNotBlocking'; data: { userId: string; otherUserId: string } };

export const isBlockCommand = (command: { type: string }): command is BlockCommand =>
  command.type === 'BlockUser' || command.type === 'UnblockUser' || command.type === 'RequireNotBlocking';

/**
 * What a blocked user is told: 403 with a message that names no block. The code alone tells them they
 * cannot write to this person, which any refusal would; nothing says since when or why, and the
 * blocker's presence and events stay out of their reach.
 */
export const BLOCKED_MESSAGE = 'you cannot message this user';

export const decideBlock = (command: BlockCommand, state: UserState): ChatEvent[] => {
  switch (command.type) {
    case 'BlockUser': {
      const { userId, blockedUserId, now } = command.data;
      if (userId === blockedUserId) {
        const message = 'you cannot block yourself';
        throw new ChatError('validation_failed', message, [{ path: ['params', 'userId'], message }]);
      }
      if (state.blocks.get(blockedUserId)?.blocked) return [];
      return [{ type: 'UserBlocked', data: { userId, blockedUserId, at: now } }];
    }
    case 'UnblockUser': {
      const { userId, blockedUserId, now } = command.data;
      const record = state.blocks.get(blockedUserId);
      if (!record) throw new ChatError('not_found', 'block not found');
      if (!record.blocked) return [];
      return [{ type: 'UserUnblocked', data: { userId, blockedUserId, at: now } }];
    }
    case 'RequireNotBlocking': {
      if (state.blocks.get(command.data.otherUserId)?.blocked)
        throw new ChatError('forbidden', BLOCKED_MESSAGE);
      return [];
    }
    default: {
      const never: never = command;
      throw new Error(`unknown command ${JSON.stringify(never)}`);
    }
  }
};
