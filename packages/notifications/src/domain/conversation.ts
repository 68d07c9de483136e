import {
  type ChatEventOf,
  type ConversationKind,
  defaultNotificationLevel,
  type NotificationLevel,
  startingMembers,
} from '@chat/events';

/**
 * What the notifier must know about a conversation to decide who gets a notification: its members, the
 * levels members set and their mutes. The notifier keeps its own copy, built from the log, so it never
 * depends on another service's tables and a replay from position 0 reproduces the same records.
 */
export type ConversationState = {
  conversationId: string;
  kind: ConversationKind;
  members: Set<string>;
  /** userId → the level the user set here (absent: the default by kind). Kept after leaving. */
  levels: Map<string, NotificationLevel>;
  /** The users whose level here is `all` by choice: in a group, the only ones every message notifies. */
  everyMessage: Set<string>;
  /** userId → epoch ms until which the member has muted the conversation. */
  mutes: Map<string, number>;
};

export type StateEvent = ChatEventOf<
  'ConversationStarted' | 'MemberJoined' | 'MemberLeft' | 'ConversationMuted' | 'NotificationLevelSet'
>;

export const startedState = (data: ChatEventOf<'ConversationStarted'>['data']): ConversationState => ({
  conversationId: data.conversationId,
  kind: data.kind,
  members: new Set(startingMembers(data)),
  levels: new Map(),
  everyMessage: new Set(),
  mutes: new Map(),
});

/** The member's level: the one they set, else the default by kind (API.md §2.3). */
export const levelOf = (state: ConversationState, userId: string): NotificationLevel =>
  state.levels.get(userId) ?? defaultNotificationLevel(state.kind);

export const setLevel = (state: ConversationState, userId: string, level: NotificationLevel): void => {
  state.levels.set(userId, level);
  if (level === 'all') state.everyMessage.add(userId);
  else state.everyMessage.delete(userId);
};

/** Applies a membership, mute or level change in place (the state lives in a per-leader cache). */
export const evolve = (state: ConversationState, event: StateEvent): ConversationState => {
  switch (event.type) {
    case 'ConversationStarted':
      for (const m of startingMembers(event.data)) state.members.add(m);
      return state;
    case 'MemberJoined':
      state.members.add(event.data.userId);
      return state;
    case 'MemberLeft':
      state.members.delete(event.data.userId);
      return state;
    case 'ConversationMuted': {
      const until = muteUntil(event.data.until);
      if (until === null) state.mutes.delete(event.data.userId);
      else state.mutes.set(event.data.userId, until);
      return state;
    }
    case 'NotificationLevelSet':
      setLevel(state, event.data.userId, event.data.level);
      return state;
    default: {
      const never: never = event;
      return never;
    }
  }
};

/** `null` (or an unreadable time) unmutes. */
export const muteUntil = (until: string | null): number | null => {
  if (until === null) return null;
  const ms = Date.parse(until);
  return Number.isNaN(ms) ? null : ms;
};
