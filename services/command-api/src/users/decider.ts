import { type ChatEvent, isEventOfStream } from '@chat/events';
import type { Recorded } from '../conversations/state.js';
import { decideBlock, isBlockCommand } from './blocks.js';
import type { UserCommand } from './commands.js';
import type { UserState } from './state.js';

/**
 * Decides which events a command on the user's stream produces. An empty list means "already done":
 * the caller answers with the earlier event's position.
 */
export const decideUser = (command: UserCommand, state: UserState): ChatEvent[] => {
  if (isBlockCommand(command)) return decideBlock(command, state);
  switch (command.type) {
    case 'SetNotificationLevel': {
      const { userId, conversationId, level } = command.data;
      // Setting the default explicitly is an event the first time: there is no earlier one to answer with.
      if (state.levels.get(conversationId)?.level === level) return [];
      return [{ type: 'NotificationLevelSet', data: { conversationId, userId, level } }];
    }
    default: {
      const unknownCommand: never = command;
      throw new Error(`unknown command ${JSON.stringify(unknownCommand)}`);
    }
  }
};

/**
 * Folds one event of the user's stream, which landed at `at`, into the state (in place). Exhaustive over
 * the events of user streams; no other event is ever on one.
 */
export const evolveUser = (state: UserState, event: ChatEvent, at: Recorded): UserState => {
  if (!isEventOfStream(event, 'user')) return state;
  switch (event.type) {
    case 'NotificationLevelSet':
      state.levels.set(event.data.conversationId, { level: event.data.level, at });
      return state;
    case 'UserBlocked':
    case 'UserUnblocked':
      state.blocks.set(event.data.blockedUserId, { blocked: event.type === 'UserBlocked', at });
      return state;
    case 'ConversationMuted':
    case 'NotificationsRead':
    case 'UserErased':
      return state;
    default: {
      const unknownEvent: never = event;
      throw new Error(`unknown event ${JSON.stringify(unknownEvent)}`);
    }
  }
};
