import type { NotificationLevel } from '@chat/events';
import type { BlockCommand } from './blocks.js';

/**
 * Commands decided on one user's own stream (`user-<userId>`), with the acting user already checked
 * against the conversation they name (a member, else 404) by the conversation's writer.
 */
export type UserCommand =
  | {
      type: 'SetNotificationLevel';
      data: { userId: string; conversationId: string; level: NotificationLevel };
    }
  | BlockCommand;

export type UserCommandType = UserCommand['type'];
