import { userStream } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import type { UserCommand } from '../users/commands.js';
import { decideUser, evolveUser } from '../users/decider.js';
import { initialUserState, type UserState } from '../users/state.js';
import type { Aggregate, Folded } from './aggregate.js';
import { readStore, storedEvent } from './conversation-aggregate.js';

export type CachedUser = Folded<UserState, 'user'>;

/**
 * A user as the writer decides on it: the fold of their stream. Only this writer appends to it with an
 * expected revision; mutes and notification reads are appended with revision `any`, so a cached state
 * meets them as a conflict and catches up.
 */
export const userAggregate = (store: EventStore): Aggregate<UserCommand, UserState, 'user', CachedUser> => {
  const catchUp = async (userId: string, entry: CachedUser): Promise<void> => {
    const events = await readStore(() =>
      store.readStream(userStream(userId), { fromRevision: entry.revisions.user + 1 }),
    );
    for (const recorded of events) {
      evolveUser(entry.state, storedEvent(recorded), { seq: recorded.revision, position: recorded.position });
      entry.revisions.user = recorded.revision;
    }
  };
  return {
    streams: ['user'],
    decide: decideUser,
    evolve: evolveUser,
    catchUp: (userId, entry) => catchUp(userId, entry),
    async load(userId) {
      const entry: CachedUser = { state: initialUserState(), revisions: { user: -1 } };
      await catchUp(userId, entry);
      return entry;
    },
    exists: (entry) => entry.revisions.user >= 0,
    // The block check before a direct message sees blocks written through any instance.
    needsFresh: (command) => command.type === 'RequireNotBlocking',
  };
};
