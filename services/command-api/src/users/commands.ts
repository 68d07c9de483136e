import type { CommandFields, CommandShapes } from '@chat/events';
import type { BlockCommand } from './blocks.js';

/**
 * Commands decided on one user's own stream (`user-<userId>`), with the acting user already checked
 * against the conversation they name (a member, else 404) by the conversation's writer. The request's
 * fields come from the shapes of @chat/events; `userId` is the acting user, whose stream it is.
 */
export type UserCommand =
  | {
      type: 'SetNotificationLevel';
      data: CommandFields<CommandShapes['setNotificationLevel']> & { userId: string };
    }
  | BlockCommand;

export type UserCommandType = UserCommand['type'];
