import { conversationStream, type RawEnvelope, STREAM_PREFIX } from '@chat/events';
import type { EventStore } from '@chat/eventstore';
import type { Logger } from '@chat/platform';
import { RETRY, withRetry } from '@chat/retry';
import type { NatsConnection, Subscription } from 'nats';
import { eventFrame, frame } from '../client/frames.js';
import { membersAtStart } from '../membership/tail.js';
import type { GatewayMetrics } from '../metrics/metrics.js';
import type { HeldFrame, Socket } from './types.js';

/**
 * A socket's frames of one conversation held back while it catches up (resume, a join it missed, its
 * first moments). `replaying` while a replay from the store is under way: only that replay ends it.
 * `until` (else -1): the replay sent the socket events up to this seq, further than the feed has
 * published (its relay lags behind the store); the socket is the feed's again once the feed reaches it,
 * and nothing at or below it is sent again. The socket's delivered-seq watermark, kept only while it is
 * ahead of its feed: every other socket's is the feed's own `lastSeq`.
 */
export type CatchUp = {
  feed: ConversationFeed;
  frames: HeldFrame[];
  left: boolean;
  replaying: boolean;
  until: number;
};

/** What a feed needs from the hub that owns it. */
export type FeedHost = {
  store: EventStore;
  nats: NatsConnection;
  logger: Logger;
  metrics: GatewayMetrics;
  publish(topic: string, text: string): void;
  /** A user's local sockets join the feed's topic just before their MemberJoined goes out… */
  memberJoined(feed: ConversationFeed, userId: string, seq: number, position: string): void;
  /** …and leave it right after their MemberLeft went out. */
  memberLeft(feed: ConversationFeed, userId: string, seq: number, position: string): void;
  typing(feed: ConversationFeed, userId: string, text: string): void;
  /** How long a hint (`ensureUpTo`) waits for NATS to bring the events it names before the store is read. */
  readonly hintGraceMs: number;
  /** NATS brought the events of a head `ms` after the head came, or had not after `ms` (the store was read). */
  observeHeadLag(ms: number): void;
  /** The feed published the seq a socket held ahead of it (`CatchUp.until`) had: the socket goes live. */
  caughtUp(feed: ConversationFeed, ws: Socket): void;
};

const PAGE = 500;
const decoder = new TextDecoder();

/**
 * One conversation as this gateway delivers it: one NATS subscription, one uWS topic, and the last
 * seq published to that topic. Conversation events go out strictly in seq order: a duplicate
 * (at-least-once relay, NATS redelivery) is dropped; a gap (a message lost while NATS restarted)
 * holds later events back while the missing ones are read from the event store.
 */
export class ConversationFeed {
  readonly topic: string;
  readonly stream: string;
  /** Local members → seq of the event that made them members (a stale membership event is older). */
  readonly members = new Map<string, number>();
  /** Sockets whose frames are held back while they replay from the store (resume, first moments). */
  readonly catchingUp = new Map<Socket, CatchUp>();
  lastSeq = -1;
  readonly ready: Promise<void>;
  disposed = false;
  /** The baseline is known: `lastSeq` is real and events are published in order from there. */
  live = false;
  #filling = false;
  /** The highest seq the stream is known to have reached (heads, membership news): a fill reads up to it. */
  #wantUpTo = -1;
  /**
   * Hints not reached yet, oldest first: the seq each named and when it came (`performance.now()`). A
   * hint newer than the last one's seq is added; older ones wait with it.
   */
  #hints: { seq: number; at: number }[] = [];
  /** Ends the oldest hint's wait: if NATS has not brought its events by then, the store is read. */
  #hintTimer: NodeJS.Timeout | undefined;
  /** Inside a run of events emitted in one go (a fill's page, held events): see `emittingRun`. */
  #inRun = false;
  #pending: RawEnvelope[] = [];
  #pendingOther: RawEnvelope[] = [];
  #sub: Subscription | undefined;
  /** Aborted on dispose: ends the start and fill retries. */
  readonly #stopped = new AbortController();

  constructor(
    readonly conversationId: string,
    private readonly host: FeedHost,
    subject: string,
    /** The seq this gateway's sockets have up to; unknown means "the stream's end right now". */
    baseline?: number,
  ) {
    this.topic = `c:${conversationId}`;
    this.stream = conversationStream(conversationId);
    this.#sub = host.nats.subscribe(subject, {
      callback: (err, msg) => {
        if (!err) this.#onMessage(decoder.decode(msg.data));
      },
    });
    this.ready = this.#start(baseline);
    this.ready.catch(() => {});
  }

  async #start(baseline: number | undefined): Promise<void> {
    // The subscription must be live on the server before the baseline is read, so that every event
    // after the baseline reaches us through NATS or, if lost, through the fill. Until NATS and the
    // store answer, the feed waits (its sockets are held, nothing is skipped).
    try {
      await withRetry(
        RETRY.dependency,
        async () => {
          await this.host.nats.flush();
          this.lastSeq = baseline ?? (await this.host.store.streamRevision(this.stream));
        },
        { signal: this.#stopped.signal, onRetry: this.#onRetry('feed start failed; retrying') },
      );
    } catch {
      return; // disposed while waiting
    }
    this.live = true;
    if (baseline !== undefined || this.lastSeq < this.#wantUpTo) this.fill();
    else if (this.#drainPending()) this.#flushOther();
  }

  #flushOther(): void {
    const other = this.#pendingOther;
    this.#pendingOther = [];
    for (const e of other) this.#onOther(e);
  }

  dispose(): void {
    this.disposed = true;
    this.#stopped.abort();
    clearTimeout(this.#hintTimer);
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    this.catchingUp.clear();
  }

  /**
   * Reads anything newer than lastSeq from the store (after a NATS reconnect, or a hint); false when no
   * read starts (not live yet, or one runs: each reads up to `#wantUpTo` before it ends).
   */
  fill(): boolean {
    if (!this.live || this.#filling || this.disposed) return false;
    this.#filling = true;
    void this.#fill();
    return true;
  }

  /**
   * The stream reached `seq` (the relay's heads, a membership message on the user subject): read up to
   * there from the store. Kept also while a fill runs or before the feed is live — a fill whose read
   * was taken before `seq` committed reads again.
   *
   * The store is read only if the events have not come by NATS within `hintGraceMs` of the hint that
   * named them. Their writer publishes them right after its commit and the relay's heads follow a read
   * of the log, but on a busy host the heads often come first (in B1 at 200 msg/s, one message in 15
   * had each gateway read the store for an event NATS brought a moment later; at 1,000 msg/s, with the
   * host saturated, NATS brought them up to a second after the head). A writer that died before
   * publishing costs its events that much more delay, unless a later event of the conversation shows
   * the gap first.
   */
  ensureUpTo(seq: number): void {
    if (seq > this.#wantUpTo) this.#wantUpTo = seq;
    if (this.lastSeq >= seq) return;
    if (this.host.hintGraceMs <= 0) {
      if (this.fill()) this.host.metrics.hintFills.inc();
      return;
    }
    const newest = this.#hints.at(-1);
    if (newest && newest.seq >= seq) return;
    this.#hints.push({ seq, at: performance.now() });
    if (this.#hintTimer === undefined) this.#waitForHint();
  }

  /** Sets the timer for the end of the oldest hint's wait. */
  #waitForHint(): void {
    const oldest = this.#hints[0];
    if (!oldest) return;
    const left = oldest.at + this.host.hintGraceMs - performance.now();
    this.#hintTimer = setTimeout(() => this.#hintDue(), Math.max(0, left));
  }

  #hintDue(): void {
    this.#hintTimer = undefined;
    const oldest = this.#hints[0];
    if (!oldest || this.disposed) return;
    const waited = performance.now() - oldest.at;
    if (waited < this.host.hintGraceMs) {
      // The grace grew meanwhile (the live path slowed down): wait the rest.
      this.#waitForHint();
      return;
    }
    // NATS did not bring it in time. One read takes what the store holds, every later hint's events
    // too (a fill reads on until it has `#wantUpTo`).
    this.#hints = [];
    this.host.observeHeadLag(waited);
    if (this.fill()) this.host.metrics.hintFills.inc();
  }

  #onMessage(json: string): void {
    let envelope: RawEnvelope;
    try {
      envelope = JSON.parse(json) as RawEnvelope;
    } catch (err) {
      this.host.logger.warn({ err }, 'unreadable NATS message');
      return;
    }
    const streamId = envelope.streamId;
    if (streamId === this.stream) {
      this.#onConversationEvent(envelope, json);
      return;
    }
    if (!this.live || this.#filling) {
      // Receipts and typing wait with the conversation events: a feed just created for a joining
      // user adds that user's sockets only when the join event goes out.
      if (this.#pendingOther.length < 10_000) this.#pendingOther.push(envelope);
      return;
    }
    this.#onOther(envelope);
  }

  #onOther(envelope: RawEnvelope): void {
    const streamId = envelope.streamId;
    const data = envelope.data;
    if (streamId.startsWith(STREAM_PREFIX.receipts) && envelope.type === 'ConversationRead') {
      const text = frame({
        type: 'receipt',
        conversationId: this.conversationId,
        userId: String(data.userId),
        readSeq: Number(data.upToSeq),
        at: String(data.readAt),
      });
      this.host.publish(this.topic, text);
      for (const c of this.catchingUp.values()) if (!c.left) c.frames.push({ seq: -1, text });
    } else if (streamId.startsWith(STREAM_PREFIX.typing) && envelope.type === 'TypingStarted') {
      const userId = String(data.userId);
      const text = frame({
        type: 'typing',
        conversationId: this.conversationId,
        userId,
        at: String(data.at),
      });
      this.host.typing(this, userId, text);
    }
  }

  #onConversationEvent(envelope: RawEnvelope, json: string): void {
    const seq = envelope.revision;
    const oldest = this.#hints[0];
    if (oldest && oldest.seq <= seq) this.host.observeHeadLag(performance.now() - oldest.at);
    if (!this.live || this.#filling) {
      this.#pending.push(envelope);
      return;
    }
    if (seq <= this.lastSeq) {
      this.host.metrics.duplicatesDropped.inc();
      return;
    }
    if (seq === this.lastSeq + 1) {
      this.#emit(envelope, json);
      return;
    }
    this.#pending.push(envelope);
    this.host.metrics.gapFills.inc();
    this.fill();
  }

  #emit(envelope: RawEnvelope, json: string): void {
    const seq = envelope.revision;
    const data = envelope.data;
    if (envelope.type === 'ConversationStarted') {
      for (const m of membersAtStart(data)) this.host.memberJoined(this, m, seq, envelope.position);
    } else if (envelope.type === 'MemberJoined') {
      this.host.memberJoined(this, String(data.userId), seq, envelope.position);
    }
    const text = eventFrame(this.conversationId, seq, json);
    this.lastSeq = seq;
    if (this.#hints.length > 0 && this.#hints[0]!.seq <= seq) this.#reached(seq);
    this.host.publish(this.topic, text);
    for (const c of this.catchingUp.values()) if (!c.left) c.frames.push({ seq, text });
    for (const [ws, c] of this.catchingUp) {
      if (c.until >= 0 && c.until <= seq && !c.replaying) this.host.caughtUp(this, ws);
    }
    if (envelope.type === 'MemberLeft') {
      this.host.memberLeft(this, String(data.userId), seq, envelope.position);
    }
  }

  /** The feed got to `seq`: the hints it covers are done, the timer waits for the next one. */
  #reached(seq: number): void {
    const hints = this.#hints;
    let n = 0;
    while (n < hints.length && hints[n]!.seq <= seq) n++;
    this.#hints = hints.slice(n);
    clearTimeout(this.#hintTimer);
    this.#hintTimer = undefined;
    this.#waitForHint();
  }

  async #fill(): Promise<void> {
    try {
      await withRetry(
        RETRY.dependency,
        async () => {
          for (;;) {
            const events = await this.host.store.readStream(this.stream, {
              fromRevision: this.lastSeq + 1,
              maxCount: PAGE,
            });
            if (this.disposed) return;
            this.#run(() => {
              for (const e of events) if (e.revision === this.lastSeq + 1) this.#emit(e, JSON.stringify(e));
            });
            if (events.length < PAGE) break;
          }
          // Still a gap: the event store has not shown us yet what NATS already delivered, or what the
          // heads said is there (a head that came while this read ran).
          if (!this.#drainPending() || this.lastSeq < this.#wantUpTo)
            throw new GapNotFilledError(this.conversationId, this.lastSeq);
        },
        { signal: this.#stopped.signal, onRetry: this.#onRetry('gap fill failed; retrying') },
      );
    } catch {
      return; // disposed while waiting
    }
    if (this.disposed) return;
    this.#filling = false;
    this.#flushOther();
  }

  #onRetry(message: string) {
    return (err: unknown, failedAttempts: number, delayMs: number) => {
      const context = { err, conversationId: this.conversationId, failedAttempts, delayMs };
      if (err instanceof GapNotFilledError) this.host.logger.debug(context, message);
      else this.host.logger.warn(context, message);
    };
  }

  /** Emits held-back events that now follow on; true when nothing is left waiting. */
  #drainPending(): boolean {
    if (this.#pending.length === 0) return true;
    return this.#run(() => this.#drainSorted());
  }

  /**
   * True while the feed emits several events in one go: the hub then ends a feed that lost its last
   * local member only after the run, which may hold that member's next MemberJoined (it then goes on in
   * this feed, from where it is).
   */
  get emittingRun(): boolean {
    return this.#inRun;
  }

  #run<T>(emit: () => T): T {
    const outer = this.#inRun;
    this.#inRun = true;
    try {
      return emit();
    } finally {
      this.#inRun = outer;
    }
  }

  #drainSorted(): boolean {
    const pending = this.#pending.sort((a, b) => a.revision - b.revision);
    this.#pending = [];
    for (let i = 0; i < pending.length; i++) {
      const e = pending[i]!;
      if (e.revision <= this.lastSeq) {
        this.host.metrics.duplicatesDropped.inc();
      } else if (e.revision === this.lastSeq + 1) {
        this.#emit(e, JSON.stringify(e));
      } else {
        this.#pending = pending.slice(i);
        if (!this.#filling) {
          this.host.metrics.gapFills.inc();
          this.fill();
        }
        return false;
      }
    }
    return true;
  }
}

/** The store does not show yet an event NATS delivered (a replica or visibility lag): read again. */
class GapNotFilledError extends Error {
  override readonly name = 'GapNotFilledError';
  constructor(conversationId: string, lastSeq: number) {
    super(`conversation ${conversationId}: events after seq ${lastSeq} not readable yet`);
  }
}
