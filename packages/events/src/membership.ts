import type { EventData } from './events.js';

/**
 * The members of a conversation right after its `ConversationStarted`: the creator and the listed
 * members, each once, creator first. Every fold that tracks membership (the decider, the read-model
 * projection, the notifier, the gateway) starts from this, so they never disagree about the creator.
 */
export const startingMembers = (data: Pick<EventData<'ConversationStarted'>, 'createdBy' | 'members'>) => [
  ...new Set([data.createdBy, ...data.members]),
];
