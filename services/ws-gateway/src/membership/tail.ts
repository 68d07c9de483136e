import { startingMembers } from '@chat/events';
import type { EventFilter, EventStore, RecordedEvent } from '@chat/eventstore';

/** What a connect needs of a membership event: who joined or left which conversation. */
export type MembershipChange = {
  position: string;
  conversationId: string;
  /** The event's seq in its conversation. */
  seq: number;
  /** ConversationStarted: its members; MemberJoined / MemberLeft: the one user. */
  joined: readonly string[];
  left: string | null;
  /**
   * A UserBlocked / UserUnblocked (user stream: no conversation, seq -1, nobody joins or leaves). Read
   * with the memberships so that a block the read model has not applied yet is not missed at connect.
   */
  block?: { userId: string; blockedUserId: string; blocked: boolean };
};

export const MEMBERSHIP_EVENTS: EventFilter = {
  streamPrefixes: ['conversation-', 'user-'],
  eventTypes: ['ConversationStarted', 'MemberJoined', 'MemberLeft', 'UserBlocked', 'UserUnblocked'],
};

const PAGE = 1000;

/** `startingMembers` of a ConversationStarted read off the wire (fields not yet validated). */
export const membersAtStart = (data: Record<string, unknown>): string[] =>
  startingMembers({
    createdBy: typeof data.createdBy === 'string' ? data.createdBy : '',
    members: Array.isArray(data.members)
      ? data.members.filter((m): m is string => typeof m === 'string')
      : [],
  }).filter((m) => m !== '');

const toChange = (e: RecordedEvent): MembershipChange => {
  if (e.type === 'UserBlocked' || e.type === 'UserUnblocked') {
    const block = {
      userId: String(e.data.userId),
      blockedUserId: String(e.data.blockedUserId),
      blocked: e.type === 'UserBlocked',
    };
    return { position: e.position, conversationId: '', seq: -1, joined: [], left: null, block };
  }
  const at = { position: e.position, conversationId: String(e.data.conversationId), seq: e.revision };
  if (e.type === 'ConversationStarted') return { ...at, joined: membersAtStart(e.data), left: null };
  const userId = String(e.data.userId);
  return e.type === 'MemberJoined'
    ? { ...at, joined: [userId], left: null }
    : { ...at, joined: [], left: userId };
};

/**
 * The log's membership events past the read model's checkpoint, kept in memory and shared by every
 * connect of this gateway. Each connect needs the membership changes between the read model's
 * checkpoint and the log head; reading them from the log per connect cost a scan of everything the
 * projector had not applied yet — during a reconnect storm while the projector lagged, thousands of
 * scans of the same range. Here the range is read once and extended as the head moves (concurrent
 * connects share one extension); events at or below the newest checkpoint seen are dropped. A connect
 * whose checkpoint is older than the window's start (it read the checkpoint before another connect
 * trimmed) reads that gap from the log itself.
 */
export class MembershipTail {
  /** The window holds every membership event in (from, to], in log order. */
  #from: string;
  #to: string;
  #changes: MembershipChange[] = [];
  #extending: Promise<void> | undefined;

  constructor(
    private readonly store: EventStore,
    start: string,
    /** Past this many changes the oldest half is dropped (connects behind it read their gap). */
    private readonly maxChanges = 100_000,
  ) {
    this.#from = start;
    this.#to = start;
  }

  /** Membership changes after `checkpoint`, complete up to at least `head`, in log order. */
  async since(checkpoint: string, head: string): Promise<MembershipChange[]> {
    if (checkpoint > this.#to) {
      // The read model is past everything we hold: start the window over at its checkpoint.
      this.#from = checkpoint;
      this.#to = checkpoint;
      this.#changes = [];
    }
    while (this.#to < head) {
      this.#extending ??= this.#extend(head).finally(() => {
        this.#extending = undefined;
      });
      await this.#extending;
    }
    // From here to the return nothing awaits before the window is read: no other connect trims it.
    const from = this.#from;
    const window = this.#changes.filter((c) => c.position > checkpoint);
    this.#trim(checkpoint);
    if (checkpoint >= from) return window;
    return [...(await this.#scan(checkpoint, from)), ...window];
  }

  async #extend(head: string): Promise<void> {
    const changes = await this.#scan(this.#to, undefined);
    for (const c of changes) if (c.position > this.#to) this.#changes.push(c);
    const last = changes.at(-1)?.position ?? this.#to;
    // The scan read up to the log's visible end, which was at or past `head`.
    this.#to = last > head ? last : head > this.#to ? head : this.#to;
    if (this.#changes.length > this.maxChanges) {
      const dropped = this.#changes.splice(0, this.#changes.length >> 1);
      this.#from = dropped.at(-1)?.position ?? this.#from;
    }
  }

  /** Membership changes in (after, upTo] (to the visible end when upTo is undefined), from the log. */
  async #scan(after: string, upTo: string | undefined): Promise<MembershipChange[]> {
    const out: MembershipChange[] = [];
    let from = after;
    for (;;) {
      const events = await this.store.readAll({
        fromPosition: from,
        maxCount: PAGE,
        filter: MEMBERSHIP_EVENTS,
      });
      for (const e of events) {
        if (upTo !== undefined && e.position > upTo) return out;
        out.push(toChange(e));
      }
      if (events.length < PAGE) return out;
      from = events[events.length - 1]!.position;
    }
  }

  #trim(checkpoint: string): void {
    if (checkpoint <= this.#from) return;
    // A checkpoint read after the head can be past the window's end: (checkpoint, checkpoint] is empty.
    if (checkpoint > this.#to) this.#to = checkpoint;
    let n = 0;
    while (n < this.#changes.length && this.#changes[n]!.position <= checkpoint) n++;
    this.#changes.splice(0, n);
    this.#from = checkpoint;
  }
}
