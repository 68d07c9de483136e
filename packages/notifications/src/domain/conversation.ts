import { type ChatEventOf, type ConversationKind, startingMembers } from '@chat/events';

/**
 * What the notifier must know about a conversation to decide who gets a notification: its members
 * and each member's mute. The notifier keeps its own copy, built from the log, so it never depends on
 * another service's tables and a rebuild from position 0 reproduces the same records.
 */
export type ConversationState = {
  conversationId: string;
  kind: ConversationKind;
  members: Set<string>;
  /** userId → epoch ms until which the member has muted the conversation. */
  mutes: Map<string, number>;
};

export type MembershipEvent = ChatEventOf<'ConversationStarted' | 'MemberJoined' | 'MemberLeft'>;

export const startedState = (data: ChatEventOf<'ConversationStarted'>['data']): ConversationState => ({
  conversationId: data.conversationId,
  kind: data.kind,
  members: new Set(startingMembers(data)),
  mutes: new Map(),
});

/** Applies a membership or mute change in place (the state lives in a per-leader cache). */
export const evolve = (
  state: ConversationState,
  event: MembershipEvent | ChatEventOf<'ConversationMuted'>,
): ConversationState => {
  switch (event.type) {
    case 'ConversationStarted':
      for (const m of startedState(event.data).members) state.members.add(m);
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
