import type { Conversation } from '@chat/events';
import { backoffDelay } from './backoff.js';
import type { ChatClient } from './client.js';
import { Emitter } from './emitter.js';
import { type ChatApi, ChatApiError } from './http.js';
import { UnreadCounts, type UnreadEntry, type UnreadVerdict } from './unread.js';

export type UnreadChange = {
  total: number;
  /** The conversation whose count changed; null after a seed (any may have). */
  conversationId: string | null;
};

export type UnreadTrackerEvents = {
  change: UnreadChange;
  /** Every conversation of the user as the seed read them (after each connect). */
  seeded: Conversation[];
  /** A seed that failed for good (it is tried again on the next connect). */
  error: Error;
};

const SEED_ATTEMPTS = 5;

export type UnreadTrackerOptions = {
  /**
   * After an `unread` frame, the conversation's count is read again from the server this much later
   * (at most once per this interval and conversation), anchored at the last event the client saw.
   * A frame carries no seq, so one that crossed a new message on the wire is off by it until then.
   * Default 1 s; 0 turns it off.
   */
  verifyAfterMs?: number;
};

/**
 * Keeps the user's unread counts (API.md §4 v1.1) from a `ChatClient`'s frames, seeded from
 * `GET /v1/conversations` (all pages) on every connect — the first and each reconnect, where the
 * server's counts are the truth again. A conversation the seed did not know (joined since) is seeded
 * alone from `GET /v1/conversations/{id}`. Listen to `change`; read `total` and `get(id)`.
 */
export class UnreadTracker extends Emitter<UnreadTrackerEvents> {
  #counts: UnreadCounts | undefined;
  #connection = 0;
  #seeding = false;
  readonly #seedingOne = new Set<string>();
  readonly #off: (() => void)[] = [];
  /** The position of the last event seen per conversation: what a re-read must include. */
  readonly #lastPosition = new Map<string, string>();
  readonly #verifying = new Map<string, ReturnType<typeof setTimeout>>();
  readonly #verifyAfterMs: number;
  #firstSeed: { promise: Promise<void>; resolve: () => void };

  constructor(
    readonly client: ChatClient,
    readonly api: Pick<ChatApi, 'allConversations' | 'getConversation'>,
    options: UnreadTrackerOptions = {},
  ) {
    super();
    this.#verifyAfterMs = options.verifyAfterMs ?? 1000;
    let resolve = () => {};
    const promise = new Promise<void>((r) => {
      resolve = r;
    });
    this.#firstSeed = { promise, resolve };
    this.#off.push(
      client.on('hello', (f) => {
        if (!this.#counts || this.#counts.userId !== f.userId) this.#counts = new UnreadCounts(f.userId);
        void this.#seedAll(++this.#connection);
      }),
      client.on('event', (f) => {
        this.#lastPosition.set(f.conversationId, f.event.position);
        this.#after(f.conversationId, this.#counts?.applyEvent(f), f.event.position);
      }),
      client.on('receipt', (f) => this.#after(f.conversationId, this.#counts?.applyReceipt(f))),
      client.on('unread', (f) => {
        this.#after(f.conversationId, this.#counts?.applyUnread(f));
        this.#verifyLater(f.conversationId);
      }),
    );
    if (client.userId) {
      this.#counts = new UnreadCounts(client.userId);
      void this.#seedAll(++this.#connection);
    }
  }

  /** Resolves once the first seed is in. */
  ready(): Promise<void> {
    return this.#firstSeed.promise;
  }

  get total(): number {
    return this.#counts?.total ?? 0;
  }

  /** The conversation's unread count (0 when unknown). */
  get(conversationId: string): number {
    return this.#counts?.get(conversationId)?.unreadCount ?? 0;
  }

  entry(conversationId: string): UnreadEntry | undefined {
    return this.#counts?.get(conversationId);
  }

  entries(): [string, UnreadEntry][] {
    return this.#counts?.entries() ?? [];
  }

  /** Stops listening to the client. */
  close(): void {
    for (const off of this.#off.splice(0)) off();
    for (const timer of this.#verifying.values()) clearTimeout(timer);
    this.#verifying.clear();
    this.#connection = -1;
  }

  #verifyLater(conversationId: string): void {
    if (this.#verifyAfterMs <= 0 || this.#verifying.has(conversationId)) return;
    const timer = setTimeout(() => {
      this.#verifying.delete(conversationId);
      if (!this.#seeding) void this.#seedOne(conversationId, this.#lastPosition.get(conversationId));
    }, this.#verifyAfterMs);
    this.#verifying.set(conversationId, timer);
  }

  #after(conversationId: string, verdict: UnreadVerdict | undefined, position?: string): void {
    if (verdict === 'changed') this.emit('change', { total: this.total, conversationId });
    // Unknown while a full seed runs: that seed replays it. Otherwise a conversation joined since.
    if (verdict === 'unknown' && !this.#seeding) void this.#seedOne(conversationId, position);
  }

  async #seedAll(connection: number): Promise<void> {
    this.#seeding = true;
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          const conversations = await this.api.allConversations();
          // A newer connect started its own seed: this answer may be older than what it will see.
          if (connection !== this.#connection || !this.#counts) return;
          this.#counts.seed(conversations, { complete: true });
          this.#seeding = false;
          this.emit('seeded', conversations);
          this.emit('change', { total: this.total, conversationId: null });
          this.#firstSeed.resolve();
          return;
        } catch (err) {
          if (connection !== this.#connection) return;
          if (attempt + 1 >= SEED_ATTEMPTS || !retryable(err)) {
            this.emit('error', err instanceof Error ? err : new Error(String(err)));
            return;
          }
          await new Promise((r) => setTimeout(r, 250 + backoffDelay(attempt, 250, 5000)));
        }
      }
    } finally {
      if (connection === this.#connection) this.#seeding = false;
    }
  }

  /** Seeds one conversation; `minPosition`: the last event seen of it, which the read model must have. */
  async #seedOne(conversationId: string, minPosition?: string): Promise<void> {
    if (this.#seedingOne.has(conversationId)) return;
    this.#seedingOne.add(conversationId);
    const connection = this.#connection;
    try {
      const conversation = await this.api.getConversation(conversationId, minPosition ? { minPosition } : {});
      if (connection !== this.#connection || !this.#counts) return;
      this.#counts.seed([conversation], { complete: false });
      this.emit('change', { total: this.total, conversationId });
    } catch (err) {
      // Not a member (any more): nothing to count. Anything else: the next connect seeds it.
      if (!(err instanceof ChatApiError && err.status === 404))
        this.emit('error', err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.#seedingOne.delete(conversationId);
    }
  }
}

const retryable = (err: unknown): boolean =>
  !(err instanceof ChatApiError) || err.status === 0 || err.status === 429 || err.status >= 500;
