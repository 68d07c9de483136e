import {
  type Conversation,
  hasTrait,
  isMembershipEvent,
  membersChangedBy,
  type ServerFrameOf,
  unreadEffectOf,
} from '@chat/events';

/** One conversation's unread state as the client knows it. */
export type UnreadEntry = {
  unreadCount: number;
  /** The user's read watermark. */
  readSeq: number;
  /** The last conversation seq these counts account for. */
  lastSeq: number;
};

export type UnreadSeed = Pick<Conversation, 'conversationId' | 'unreadCount' | 'readSeq' | 'lastSeq'>;

type Input =
  | { kind: 'event'; frame: Pick<ServerFrameOf<'event'>, 'conversationId' | 'seq' | 'event'> }
  | { kind: 'receipt'; frame: Pick<ServerFrameOf<'receipt'>, 'conversationId' | 'userId' | 'readSeq'> }
  | { kind: 'unread'; frame: Pick<ServerFrameOf<'unread'>, 'conversationId' | 'unreadCount'> };

/** What applying an input did: `unknown` when it concerned a conversation not seeded yet. */
export type UnreadVerdict = 'changed' | 'unchanged' | 'unknown';

/** Inputs kept for replay on top of a seed from a lagging read model (per conversation, newest). */
const REPLAY_LIMIT = 1000;

/**
 * The user's unread counts per conversation and in total, kept by the rules of API.md §4 (v1.1):
 * seeded from `GET /v1/conversations`; +1 for a `MessageSent` from someone else with `seq > readSeq`;
 * 0 for the user's own `MessageSent` (sending moves the watermark to its seq); set from `unread`
 * frames; the watermark from the user's own `receipt` frames. Pure: no I/O, no timers.
 *
 * A seed is a read-model snapshot as of each conversation's `lastSeq`. The read model may lag behind
 * the socket, so events the client already counted that the snapshot does not include (`seq > lastSeq`)
 * are applied again on top of it, and events the snapshot does include are never counted twice.
 * Servers before v1.1 also send an `unread` frame per new message: it sets the count the event moved
 * to already (the relay publishes the event before the projector commits and publishes the count).
 * An `unread` frame carries no seq, so one that crosses a new message on the wire (frame first) is off
 * by that message until the next frame or seed (UnreadTracker reads the conversation again after a frame).
 */
export class UnreadCounts {
  readonly #entries = new Map<string, UnreadEntry>();
  readonly #recent: Input[] = [];
  #total = 0;

  constructor(readonly userId: string) {}

  get total(): number {
    return this.#total;
  }

  get(conversationId: string): UnreadEntry | undefined {
    return this.#entries.get(conversationId);
  }

  /** Every conversation with its counts. */
  entries(): [string, UnreadEntry][] {
    return [...this.#entries];
  }

  /**
   * Replaces the state of the listed conversations with a snapshot, then replays what the client saw
   * after it. `complete`: the list is all of the user's conversations (unlisted ones are dropped).
   */
  seed(conversations: readonly UnreadSeed[], options: { complete: boolean }): void {
    if (options.complete) this.#entries.clear();
    const snapshots = new Map<string, UnreadSeed>();
    for (const c of conversations) {
      const { unreadCount, readSeq, lastSeq } = c;
      this.#entries.set(c.conversationId, { unreadCount, readSeq, lastSeq });
      snapshots.set(c.conversationId, c);
    }
    const replay = this.#recent.splice(0);
    for (const input of replay) {
      const snapshot = snapshots.get(input.frame.conversationId);
      // What the snapshot has is dropped; the rest (events past its lastSeq, own receipts past its
      // watermark) is applied, and kept while a later snapshot may still lag behind it.
      const newer =
        snapshot === undefined ||
        (input.kind === 'event' && input.frame.seq > snapshot.lastSeq) ||
        (input.kind === 'receipt' && input.frame.readSeq > snapshot.readSeq);
      if (!newer) continue;
      this.#recent.push(input);
      if (snapshot !== undefined) this.#apply(input);
    }
    this.#recount();
  }

  applyEvent(frame: Extract<Input, { kind: 'event' }>['frame']): UnreadVerdict {
    return this.#input({ kind: 'event', frame });
  }

  applyReceipt(frame: Extract<Input, { kind: 'receipt' }>['frame']): UnreadVerdict {
    if (frame.userId !== this.userId) return 'unchanged';
    return this.#input({ kind: 'receipt', frame });
  }

  applyUnread(frame: Extract<Input, { kind: 'unread' }>['frame']): UnreadVerdict {
    return this.#input({ kind: 'unread', frame });
  }

  #input(input: Input): UnreadVerdict {
    // `unread` frames are not replayed over a seed: the projector sends one only after committing, so a
    // snapshot asked for after it already has its count (and what came after it).
    if (input.kind !== 'unread') this.#remember(input);
    const verdict = this.#apply(input);
    if (verdict === 'changed') this.#recount();
    return verdict;
  }

  #remember(input: Input): void {
    this.#recent.push(input);
    if (this.#recent.length > REPLAY_LIMIT) this.#recent.splice(0, this.#recent.length - REPLAY_LIMIT);
  }

  #apply(input: Input): UnreadVerdict {
    const id = input.frame.conversationId;
    const entry = this.#entries.get(id);
    switch (input.kind) {
      case 'event':
        return this.#applyEvent(id, entry, input.frame);
      case 'receipt': {
        if (!entry) return 'unknown';
        if (input.frame.readSeq <= entry.readSeq) return 'unchanged';
        entry.readSeq = input.frame.readSeq;
        // The count comes with the `unread` frame the server sends for every MarkRead.
        return 'unchanged';
      }
      case 'unread': {
        const unreadCount = input.frame.unreadCount;
        if (!entry) {
          this.#entries.set(id, { unreadCount, readSeq: -1, lastSeq: -1 });
          return 'changed';
        }
        if (entry.unreadCount === unreadCount) return 'unchanged';
        entry.unreadCount = unreadCount;
        return 'changed';
      }
      default: {
        const never: never = input;
        throw new Error(`unknown input ${JSON.stringify(never)}`);
      }
    }
  }

  #applyEvent(
    id: string,
    entry: UnreadEntry | undefined,
    frame: Extract<Input, { kind: 'event' }>['frame'],
  ): UnreadVerdict {
    const { seq, event } = frame;
    if (entry && seq <= entry.lastSeq) return 'unchanged';
    // What the event does to the counts is its type's `unread` trait in @chat/events.
    const effect = unreadEffectOf(event.type);
    switch (effect) {
      case 'joins':
      case 'leaves': {
        if (!isMembershipEvent(event) || !membersChangedBy(event).includes(this.userId)) break;
        // A member's watermark starts at the seq that made them a member (API.md §2.3).
        if (effect === 'joins') this.#entries.set(id, { unreadCount: 0, readSeq: seq, lastSeq: seq });
        else this.#entries.delete(id);
        return 'changed';
      }
      case 'counts': {
        if (!hasTrait(event, 'unread', 'counts')) break;
        if (!entry) return 'unknown';
        entry.lastSeq = seq;
        if (event.data.senderId === this.userId) {
          entry.readSeq = seq;
          if (entry.unreadCount === 0) return 'unchanged';
          entry.unreadCount = 0;
          return 'changed';
        }
        if (seq <= entry.readSeq) return 'unchanged';
        entry.unreadCount += 1;
        return 'changed';
      }
      case 'none':
        break;
      default: {
        const never: never = effect;
        throw new Error(`unknown unread effect ${JSON.stringify(never)}`);
      }
    }
    if (!entry) return 'unknown';
    entry.lastSeq = seq;
    return 'unchanged';
  }

  #recount(): void {
    let total = 0;
    for (const entry of this.#entries.values()) total += entry.unreadCount;
    this.#total = total;
  }
}
