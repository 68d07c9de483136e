import {
  ChatError,
  conversationStream,
  parseEvent,
  receiptsStream,
  TYPING_MAX_AGE_SECONDS,
  typingStream,
  upcasters,
} from '@chat/events';
import type { EventStore, RecordedEvent, WrongExpectedVersionError } from '@chat/eventstore';
import type { Logger } from 'pino';
import type { ConversationCommand } from '../conversations/commands.js';
import { decide, evolve } from '../conversations/decider.js';
import { type ConversationState, initialState } from '../conversations/state.js';
import type { Aggregate, Folded } from './aggregate.js';

/** The streams folded into a conversation's state (they are decided under the same lock). */
export type FoldedStream = 'conversation' | 'receipts' | 'typing';

/** One conversation's state and the revisions of the streams it was folded from. */
export type CachedConversation = Folded<ConversationState, FoldedStream> & {
  /** Whether the typing stream's max age is known to be set. */
  typingRetentionSet: boolean;
};

const TYPING_HISTORY_ON_LOAD = 50;

export const storeUnavailable = (cause: unknown) =>
  new ChatError('unavailable', 'the event store is unavailable', undefined, { cause });

/** Runs a read of the store; a failure is the store being unavailable (503, nothing written). */
export const readStore = async <T>(reading: () => Promise<T>): Promise<T> => {
  try {
    return await reading();
  } catch (err) {
    throw storeUnavailable(err);
  }
};

/** Upcasts and parses a stored event for a fold. */
export const storedEvent = (recorded: RecordedEvent) => {
  const upcast = upcasters.upcast(recorded);
  return parseEvent(upcast.type, upcast.data);
};

/**
 * A conversation as the writer decides on it: the conversation stream folded together with its
 * receipts and typing streams. A load reads the conversation and receipts streams whole and the typing
 * stream's recent events; a catch-up reads only events newer than the state has seen.
 */
export const conversationAggregate = (
  store: EventStore,
  logger: Logger,
): Aggregate<ConversationCommand, ConversationState, FoldedStream, CachedConversation> => {
  const catchUp = async (
    conversationId: string,
    entry: CachedConversation,
    conflicts: readonly WrongExpectedVersionError[],
  ): Promise<void> => {
    // Typing is read only after a conflict on it, which also tells the revision scavenged events left.
    const typingConflict = conflicts.find((c) => c.streamId === typingStream(conversationId));
    const [conversation, receipts, typing] = await readStore(() =>
      Promise.all([
        store.readStream(conversationStream(conversationId), {
          fromRevision: entry.revisions.conversation + 1,
        }),
        store.readStream(receiptsStream(conversationId), { fromRevision: entry.revisions.receipts + 1 }),
        typingConflict
          ? store.readStream(typingConflict.streamId, { fromRevision: entry.revisions.typing + 1 })
          : Promise.resolve([]),
      ]),
    );
    const merged = [
      ...conversation.map((e) => ['conversation', e] as const),
      ...receipts.map((e) => ['receipts', e] as const),
      ...typing.map((e) => ['typing', e] as const),
    ].sort(([, a], [, b]) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
    for (const [kind, recorded] of merged) fold(entry, kind, recorded);
    if (typingConflict && typingConflict.actual > entry.revisions.typing)
      entry.revisions.typing = typingConflict.actual;
  };

  return {
    streams: ['conversation', 'receipts', 'typing'],
    decide,
    evolve,
    catchUp,
    async load(conversationId) {
      const entry: CachedConversation = {
        state: initialState(),
        revisions: { conversation: -1, receipts: -1, typing: -1 },
        typingRetentionSet: false,
      };
      await catchUp(conversationId, entry, []);
      const typing = await readStore(() =>
        store.readStream(typingStream(conversationId), {
          direction: 'backwards',
          maxCount: TYPING_HISTORY_ON_LOAD,
        }),
      );
      for (const recorded of typing.reverse()) fold(entry, 'typing', recorded);
      entry.typingRetentionSet = entry.revisions.typing >= 0;
      return entry;
    },
    exists: (entry) => entry.revisions.conversation >= 0,
    // Typing streams keep an hour (stream metadata); set once per conversation, after its first event.
    async confirmed(conversationId, entry, streamIds) {
      if (entry.typingRetentionSet || !streamIds.has(typingStream(conversationId))) return;
      entry.typingRetentionSet = true;
      await store
        .setStreamMetadata(typingStream(conversationId), { maxAgeSeconds: TYPING_MAX_AGE_SECONDS })
        .catch((err: unknown) => logger.warn({ err }, 'could not set typing stream max age'));
    },
  };
};

const fold = (entry: CachedConversation, kind: FoldedStream, recorded: RecordedEvent) => {
  evolve(entry.state, storedEvent(recorded), { seq: recorded.revision, position: recorded.position });
  entry.revisions[kind] = Math.max(entry.revisions[kind], recorded.revision);
};
