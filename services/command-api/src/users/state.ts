import type { NotificationLevel } from '@chat/events';
import type { Recorded } from '../conversations/state.js';
import type { BlockRecord } from './blocks.js';

/** A level the user set for one conversation, and where the event that set it landed. */
export type LevelRecord = { level: NotificationLevel; at: Recorded };

/**
 * What the command side must know about one user to decide on their stream: the notification level
 * they set per conversation. A conversation without a record has its default (API.md §2.3), which is
 * no earlier event to answer a repeat with.
 */
export type UserState = {
  levels: Map<string, LevelRecord>;
  /** Per user ever blocked: blocked now or not, and the event that made it so (blocks.ts). */
  blocks: Map<string, BlockRecord>;
};

export const initialUserState = (): UserState => ({ levels: new Map(), blocks: new Map() });
