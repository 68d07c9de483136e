import { type ChatEvent, type ChatEventOf, type EventData, type EventTypeWith, hasTrait } from './events.js';

/**
 * The members of a conversation right after its `ConversationStarted`: the creator and the listed
 * members, each once, creator first. Every fold that tracks membership (the decider, the read-model
 * projection, the notifier, the gateway) starts from this, so they never disagree about the creator.
 */
export const startingMembers = (data: Pick<EventData<'ConversationStarted'>, 'createdBy' | 'members'>) => [
  ...new Set([data.createdBy, ...data.members]),
];

/** The event types that change who is a member (relay route `membership`). */
export type MembershipEventType = EventTypeWith<'relay', 'membership'>;
export type MembershipEvent = ChatEventOf<MembershipEventType>;

export const isMembershipEvent = (event: ChatEvent): event is MembershipEvent =>
  hasTrait(event, 'relay', 'membership');

/** The users whose membership the event changes: they join or leave as its `unread` trait says. */
export const membersChangedBy = (event: MembershipEvent): string[] => {
  switch (event.type) {
    case 'ConversationStarted':
      return startingMembers(event.data);
    case 'MemberJoined':
    case 'MemberLeft':
      return [event.data.userId];
    default: {
      const never: never = event;
      throw new Error(`unknown membership event ${JSON.stringify(never)}`);
    }
  }
};
