import type { ChatEvent, StreamCategory } from '@chat/events';
import type { WrongExpectedVersionError } from '@chat/eventstore';
import type { Recorded } from '../conversations/state.js';

/** One aggregate's state as the writer caches it, with the revision of each stream folded into it. */
export type Folded<S, K extends StreamCategory> = { state: S; revisions: Record<K, number> };

/**
 * What the command writer needs to know about one kind of aggregate (a conversation, a user): its pure
 * decider and fold, which of its streams the state is folded from, and how that state is read from the
 * store. Events go to the stream `streamIdOf` (@chat/events) names; those on a folded stream are
 * appended with its expected revision and folded in, others (a conversation command's mute, on the
 * user's stream) with revision `any`.
 */
export type Aggregate<C, S, K extends StreamCategory, E extends Folded<S, K> = Folded<S, K>> = {
  /** The stream categories the state is folded from. */
  readonly streams: readonly K[];
  decide(command: C, state: S): ChatEvent[];
  /** Folds one event in place and returns the same state (the cache owns it). */
  evolve(state: S, event: ChatEvent, at: Recorded): S;
  /** Reads the aggregate's streams into a fresh entry. */
  load(id: string): Promise<E>;
  /** Reads only what the entry has not seen; `conflicts` are the refusals that sent the writer here. */
  catchUp(id: string, entry: E, conflicts: readonly WrongExpectedVersionError[]): Promise<void>;
  /**
   * Commands decided on state caught up with the store even when cached (another instance may have
   * appended): a check that appends nothing meets no conflict that would tell it so.
   */
  needsFresh?(command: C): boolean;
  /** Only aggregates that exist are cached, so probing random ids costs no memory. */
  exists(entry: E): boolean;
  /** Called after a batch with the streams the store confirmed appends to (e.g. to set a retention). */
  confirmed?(id: string, entry: E, streamIds: ReadonlySet<string>): Promise<void>;
};

/** The writer's cache of aggregate states, least recently used dropped first. */
export class StateCache<E> {
  readonly #entries = new Map<string, E>();

  constructor(
    private readonly options: {
      maxCached: number;
      exists: (entry: E) => boolean;
      /** Aggregates with commands in flight are never dropped (their state is being written). */
      busy: (id: string) => boolean;
    },
  ) {}

  /** The cached state, now the most recently used, or undefined. */
  get(id: string): E | undefined {
    const entry = this.#entries.get(id);
    if (entry) {
      this.#entries.delete(id);
      this.#entries.set(id, entry);
    }
    return entry;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  remember(id: string, entry: E): void {
    if (!this.options.exists(entry) || this.#entries.has(id)) return;
    this.#entries.set(id, entry);
    for (const key of this.#entries.keys()) {
      if (this.#entries.size <= this.options.maxCached) break;
      if (!this.options.busy(key)) this.#entries.delete(key);
    }
  }

  forget(id: string): void {
    this.#entries.delete(id);
  }

  clear(): void {
    this.#entries.clear();
  }
}
