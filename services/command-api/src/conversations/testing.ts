import { type ChatError, type ChatEvent, CONVERSATION_EVENT_TYPES, eventIssues } from '@chat/events';
import { expect } from 'vitest';
import type { ConversationCommand } from './commands.js';
import { decide, evolve } from './decider.js';
import { type ConversationState, initialState } from './state.js';

const CONVERSATION_TYPES = new Set<string>(CONVERSATION_EVENT_TYPES);

/** Fake positions for given events: their index in the given list, as a 32-digit hex string. */
export const fakePosition = (n: number) => n.toString(16).padStart(32, '0');

/** Folds the given events the way the cache does: conversation events get consecutive seqs. */
export const stateOf = (events: readonly ChatEvent[]): ConversationState => {
  let seq = -1;
  return events.reduce((state, event, i) => {
    const recordedSeq = CONVERSATION_TYPES.has(event.type) ? ++seq : i;
    return evolve(state, event, { seq: recordedSeq, position: fakePosition(i) });
  }, initialState());
};

/**
 * given/when/then over the pure decider (emmett style). Every event the decider appends must also pass
 * its own schema in @chat/events: the consumers' guarantee that no accepted command stops them. And the
 * decider is pure: whatever it answers, the state it was given is left exactly as the events folded it
 * (the writer folds the appended event itself; a decider that also changed the state would apply it twice).
 */
export const given = (events: readonly ChatEvent[]) => ({
  when: (command: ConversationCommand) => {
    const state = stateOf(events);
    const run = () => {
      try {
        return decide(command, state);
      } finally {
        expect(state, 'the decider changed the state it was given').toEqual(stateOf(events));
      }
    };
    return {
      thenAppends: (expected: ChatEvent[]) => {
        const appended = run();
        expect(appended).toEqual(expected);
        for (const event of appended) expect(eventIssues(event)).toEqual([]);
      },
      thenNothing: () => expect(run()).toEqual([]),
      thenThrows: (code: ChatError['code'], details?: unknown) => {
        let error: unknown;
        try {
          run();
        } catch (err) {
          error = err;
        }
        expect(error).toMatchObject({ name: 'ChatError', code, ...(details ? { details } : {}) });
      },
      state,
    };
  },
});
