import {
  ChatError,
  conversationStream,
  parseEvent,
  receiptsStream,
  typingStream,
  upcasters,
} from '@chat/events';
import type { EventStore, RecordedEvent, WrongExpectedVersionError } from '@chat/eventstore';
import { evolve } from '../conversations/decider.js';
import { type ConversationState, initialState } from '../conversations/state.js';

/** The streams folded into a conversation's state. */
export type FoldedStream = 'conversation' | 'receipts' | 'typing';

/** One conversation's state and the revisions of the streams it was folded from. */
export type CachedConversation = {
  state: ConversationState;
  revisions: Record<FoldedStream, number>;
  /** Whether the typing stream's max age is known to be set. */
  typingRetentionSet: boolean;
};

const TYPING_HISTORY_ON_LOAD = 50;

export const storeUnavailable = (cause: unknown) =>
  new ChatError('unavailable', 'the event store is unavailable', undefined, { cause });

/**
 * The command side's in-process cache of conversation states (least recently used dropped first), and
 * the reads that build and refresh them: a load reads the conversation and receipts streams whole and
 * the typing stream's recent events; a catch-up reads only events newer than the state has seen.
 */
export class ConversationCache {
  readonly #entries = new Map<string, CachedConversation>();

  constructor(
    private readonly store: EventStore,
    private readonly options: {
      maxCached: number;
      /** Conversations with commands in flight are never dropped (their state is being written). */
      busy: (conversationId: string) => boolean;
    },
  ) {}

  /** The cached state, now the most recently used, or undefined. */
  get(conversationId: string): CachedConversation | undefined {
    const entry = this.#entries.get(conversationId);
    if (entry) {
      this.#entries.delete(conversationId);
      this.#entries.set(conversationId, entry);
    }
    return entry;
  }

  has(conversationId: string): boolean {
    return this.#entries.has(conversationId);
  }

  /** Only conversations that exist are cached, so probing random ids costs no memory. */
  remember(conversationId: string, entry: CachedConversation): void {
    if (entry.revisions.conversation < 0 || this.#entries.has(conversationId)) return;
    this.#entries.set(conversationId, entry);
    for (const key of this.#entries.keys()) {
      if (this.#entries.size <= this.options.maxCached) break;
      if (!this.options.busy(key)) this.#entries.delete(key);
    }
  }

  forget(conversationId: string): void {
    this.#entries.delete(conversationId);
  }

  clear(): void {
    this.#entries.clear();
  }

  async load(conversationId: string): Promise<CachedConversation> {
    const entry: CachedConversation = {
      state: initialState(),
      revisions: { conversation: -1, receipts: -1, typing: -1 },
      typingRetentionSet: false,
    };
    await this.catchUp(conversationId, entry);
    const typing = await read(() =>
      this.store.readStream(typingStream(conversationId), {
        direction: 'backwards',
        maxCount: TYPING_HISTORY_ON_LOAD,
      }),
    );
    for (const recorded of typing.reverse()) fold(entry, 'typing', recorded);
    entry.typingRetentionSet = entry.revisions.typing >= 0;
    return entry;
  }

  /**
   * Reads only the events newer than what the entry has seen and folds them in log order. Typing is
   * read only after a conflict on it, which also tells the revision scavenged typing events left.
   */
  async catchUp(
    conversationId: string,
    entry: CachedConversation,
    typingConflict?: WrongExpectedVersionError,
  ): Promise<void> {
    const [conversation, receipts, typing] = await read(() =>
      Promise.all([
        this.store.readStream(conversationStream(conversationId), {
          fromRevision: entry.revisions.conversation + 1,
        }),
        this.store.readStream(receiptsStream(conversationId), { fromRevision: entry.revisions.receipts + 1 }),
        typingConflict
          ? this.store.readStream(typingConflict.streamId, { fromRevision: entry.revisions.typing + 1 })
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
  }
}

const fold = (entry: CachedConversation, kind: FoldedStream, recorded: RecordedEvent) => {
  const upcast = upcasters.upcast(recorded);
  const event = parseEvent(upcast.type, upcast.data);
  evolve(entry.state, event, { seq: recorded.revision, position: recorded.position });
  entry.revisions[kind] = Math.max(entry.revisions[kind], recorded.revision);
};

const read = async <T>(reading: () => Promise<T>): Promise<T> => {
  try {
    return await reading();
  } catch (err) {
    throw storeUnavailable(err);
  }
};
