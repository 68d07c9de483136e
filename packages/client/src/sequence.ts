import { RESUME_MAX_CONVERSATIONS } from '@chat/events';

export type SeqVerdict = 'deliver' | 'duplicate' | 'gap';

/**
 * The last seq seen per conversation: what `resume` sends after a reconnect, and the client-side
 * guard that keeps the app's view gap- and duplicate-free whatever the network did.
 */
export class SeqTracker {
  /** Least recently delivered first: a resume names the most recent ones when there are too many. */
  readonly #last = new Map<string, number>();
  /** Conversations whose last delivered event is the user's own `MemberLeft`. */
  readonly #away = new Set<string>();

  constructor(initial?: Record<string, number>) {
    for (const [id, seq] of Object.entries(initial ?? {})) this.#last.set(id.toLowerCase(), seq);
  }

  check(conversationId: string, seq: number): SeqVerdict {
    const last = this.#last.get(conversationId);
    if (last === undefined) return 'deliver';
    if (seq <= last) return 'duplicate';
    return seq === last + 1 ? 'deliver' : 'gap';
  }

  /** `own`: the event is the user's own MemberLeft or MemberJoined (see `isAway`). */
  record(conversationId: string, seq: number, own?: 'left' | 'joined'): void {
    this.#last.delete(conversationId);
    this.#last.set(conversationId, seq);
    if (own === 'left') this.#away.add(conversationId);
    else this.#away.delete(conversationId);
  }

  /**
   * The user was removed and has not come back: the server owes nothing of this conversation until
   * their own `MemberJoined`, whose seq may then jump over what was said meanwhile (API.md §4).
   */
  isAway(conversationId: string): boolean {
    return this.#away.has(conversationId);
  }

  /** After a truncated resume the client pages the gap over HTTP; live events are taken as they come. */
  forget(conversationId: string): void {
    this.#last.delete(conversationId);
    this.#away.delete(conversationId);
  }

  get(conversationId: string): number | undefined {
    return this.#last.get(conversationId);
  }

  positions(): Record<string, number> {
    return Object.fromEntries(this.#last);
  }

  /**
   * What a `resume` sends: the positions of the RESUME_MAX_CONVERSATIONS most recently active
   * conversations (the server refuses more). Any other one resumes from "now"; its first live event
   * then shows the gap and the client resumes that conversation alone.
   */
  resumePositions(): Record<string, number> {
    if (this.#last.size <= RESUME_MAX_CONVERSATIONS) return this.positions();
    return Object.fromEntries([...this.#last].slice(-RESUME_MAX_CONVERSATIONS));
  }
}
