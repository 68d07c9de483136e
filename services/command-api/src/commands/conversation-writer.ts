import {
  ChatError,
  type ChatEvent,
  CURRENT_SCHEMA_VERSION,
  conversationStream,
  eventIssues,
  receiptsStream,
  TYPING_MAX_AGE_SECONDS,
  typingStream,
  userStream,
} from '@chat/events';
import {
  type AppendResult,
  type EventStore,
  type ExpectedRevision,
  WrongExpectedVersionError,
} from '@chat/eventstore';
import { RETRY, retryDelayMs, sleep } from '@chat/retry';
import type { Logger } from 'pino';
import type { ConversationCommand } from '../conversations/commands.js';
import { decide, evolve } from '../conversations/decider.js';
import type { ConversationState, Recorded } from '../conversations/state.js';
import {
  type CachedConversation,
  ConversationCache,
  type FoldedStream,
  storeUnavailable,
} from './conversation-cache.js';
import { eventId } from './ids.js';

export type CommandMetadata = { userId: string; correlationId: string; causationId: string | null };

export type WriterMetrics = {
  observeAppend: (stream: StreamKind, seconds: number) => void;
  conflict: (stream: StreamKind) => void;
  retry: () => void;
};

/** User streams are appended to (`any` revision), never folded into a conversation's state. */
type StreamKind = FoldedStream | 'user';

/**
 * `respond` turns the state right after the command (and where its event landed, or null when it
 * appended nothing) into its answer. The answer may keep `Recorded` objects of the state: their
 * positions are final once `execute` resolves.
 */
type Respond<A> = (state: ConversationState, appended: Recorded | null) => A;

type Pending = {
  command: ConversationCommand;
  metadata: CommandMetadata;
  respond: Respond<unknown>;
  resolve: (answer: unknown) => void;
  reject: (error: unknown) => void;
  /** Times the command was decided and had to be decided again. */
  attempts: number;
};

/** The commands waiting for one conversation; they run one batch at a time. */
type Lane = { queue: Pending[]; running: boolean; freshNext: boolean };

/** What one command of a batch came to. */
type Decision = {
  pending: Pending;
  /** How many of the batch's appends were issued before it was decided: its decision relied on them. */
  after: number;
  /** Index of its own append in the batch. */
  own?: number;
  answer?: unknown;
  error?: unknown;
  /** Refused on cached state: decided again on caught-up state before the refusal is answered. */
  recheck?: boolean;
};

type Append = {
  decision: Decision;
  event: ChatEvent;
  kind: StreamKind;
  at: Recorded;
  result: Promise<AppendResult>;
  /** Folded into the state (and answered from it) before the store confirmed it. */
  folded: boolean;
};

type AppendOutcome =
  | { status: 'confirmed' }
  /** Refused by the expected revision, or the event (a derived id) was already stored: our state is behind. */
  | { status: 'behind'; conflict: WrongExpectedVersionError | null }
  | { status: 'failed'; error: unknown };

const MAX_BATCH = 200;

/** A decided event that its own schema refuses: a bug in a decider rule, kept out of the log. */
export class InvalidEventError extends Error {
  override readonly name = 'InvalidEventError';
  constructor(
    readonly event: ChatEvent,
    readonly issues: readonly { path: readonly PropertyKey[]; message: string }[],
  ) {
    super(`decided ${event.type} does not match its schema: ${JSON.stringify(issues)}`);
  }
}

/**
 * The one command handler of the conversation streams (STYLE.md): state from an in-process cache,
 * `decide`, append with the expected revision, retry on a version conflict.
 *
 * Commands on one conversation queue in a lane and run in batches, a lone command being a batch of one.
 * A batch is decided command by command, each on the state the previous one left (its event folded in
 * before the store confirmed it), and its appends (expected revisions N, N+1, …) are issued at once, so
 * the event store's group commit writes a busy conversation's commands in one transaction. Answers are
 * built from the state as each command left it and read their positions once the appends are confirmed.
 *
 * Within this process the cache is the truth for everything it wrote, so it is trusted without reading
 * the store; an append conflicts only when another instance wrote in between. A refusal decided on
 * cached state is checked again on caught-up state, so another instance's recent writes never cause a
 * wrong 404/403/409. Conflicts retry with the `conflict` policy of @chat/retry.
 */
export class ConversationWriter {
  readonly #lanes = new Map<string, Lane>();
  readonly #cache: ConversationCache;

  constructor(
    private readonly store: EventStore,
    private readonly options: {
      logger: Logger;
      metrics?: WriterMetrics;
      /** Conversations kept in the cache (least recently used are dropped). */
      maxCached?: number;
    },
  ) {
    this.#cache = new ConversationCache(store, {
      maxCached: options.maxCached ?? 10_000,
      busy: (conversationId) => this.#lanes.has(conversationId),
    });
  }

  /** Decides `command` on the conversation, appends what it produces and answers with `respond`. */
  execute<A>(
    conversationId: string,
    command: ConversationCommand,
    metadata: CommandMetadata,
    respond: Respond<A>,
  ): Promise<A> {
    return new Promise<A>((resolve, reject) => {
      let lane = this.#lanes.get(conversationId);
      if (!lane) {
        lane = { queue: [], running: false, freshNext: false };
        this.#lanes.set(conversationId, lane);
      }
      lane.queue.push({
        command,
        metadata,
        respond,
        resolve: (answer) => resolve(answer as A),
        reject,
        attempts: 0,
      });
      if (!lane.running) void this.#drain(conversationId, lane);
    });
  }

  /** Drops every cached conversation (tests, or after the store was swapped). */
  clear(): void {
    this.#cache.clear();
  }

  async #drain(conversationId: string, lane: Lane): Promise<void> {
    lane.running = true;
    try {
      while (lane.queue.length > 0) {
        const batch = lane.queue.splice(0, MAX_BATCH);
        try {
          await this.#runBatch(conversationId, lane, batch);
        } catch (err) {
          // A bug, not a refusal: no command of the batch may wait forever, and the state is suspect.
          this.options.logger.error({ err, conversationId }, 'command batch failed');
          this.#cache.forget(conversationId);
          for (const pending of batch) if (!lane.queue.includes(pending)) pending.reject(err);
        }
      }
    } finally {
      lane.running = false;
      if (lane.queue.length === 0) this.#lanes.delete(conversationId);
    }
  }

  async #runBatch(conversationId: string, lane: Lane, batch: Pending[]): Promise<void> {
    let fresh = lane.freshNext;
    lane.freshNext = false;
    let entry = this.#cache.get(conversationId);
    if (!entry) {
      try {
        entry = await this.#cache.load(conversationId);
      } catch (err) {
        for (const pending of batch) pending.reject(err);
        return;
      }
      fresh = true;
    }

    const appends: Append[] = [];
    const decisions: Decision[] = [];
    for (const pending of batch) {
      // The next command is decided on the state the previous one left: fold its event in now.
      const previous = appends.at(-1);
      if (previous && !previous.folded) this.#fold(entry, previous);
      decisions.push(this.#decide(conversationId, entry, pending, appends, fresh));
    }
    const outcomes = await this.#settle(appends);
    const last = appends.at(-1);
    if (last && !last.folded && outcomes.at(-1)?.status === 'confirmed') this.#fold(entry, last);

    // Clean: the state holds no event the store refused (only the last append is folded after its
    // confirmation, so a lone command's conflict leaves it clean). Otherwise the next batch reloads.
    const clean = appends.every(
      (a, i) => !a.folded || a.kind === 'user' || outcomes[i]?.status === 'confirmed',
    );
    if (clean) this.#cache.remember(conversationId, entry);
    else this.#cache.forget(conversationId);
    await this.#setTypingRetention(conversationId, entry, appends, outcomes);

    const firstFailure = outcomes.findIndex((o) => o.status !== 'confirmed');
    const retry: Pending[] = [];
    for (const decision of decisions) {
      const { pending } = decision;
      const own = decision.own === undefined ? undefined : outcomes[decision.own];
      if (own?.status === 'failed') {
        pending.reject(storeUnavailable(own.error));
        continue;
      }
      const reliedOnRefused = own === undefined && firstFailure >= 0 && decision.after > firstFailure;
      if (own?.status === 'behind' || reliedOnRefused || decision.recheck) {
        if (++pending.attempts < RETRY.conflict.maxAttempts) retry.push(pending);
        else pending.reject(new ChatError('unavailable', 'too many concurrent writers, try again'));
        continue;
      }
      if (decision.error !== undefined) pending.reject(decision.error);
      else pending.resolve(decision.answer);
    }
    if (retry.length === 0) return;

    lane.queue.unshift(...retry);
    if (firstFailure >= 0) {
      // Instances that keep colliding on one conversation would retry in lockstep; a random pause,
      // growing with the attempts, lets one of them through first.
      for (const _ of retry) this.options.metrics?.retry();
      await sleep(retryDelayMs(RETRY.conflict, Math.max(...retry.map((p) => p.attempts))));
    }
    if (!clean || !this.#cache.has(conversationId)) return;
    try {
      await this.#cache.catchUp(conversationId, entry, typingConflict(conversationId, outcomes));
      lane.freshNext = true;
    } catch {
      this.#cache.forget(conversationId);
    }
  }

  /** Decides one command and issues its append; the event is folded in before the next decision. */
  #decide(
    conversationId: string,
    entry: CachedConversation,
    pending: Pending,
    appends: Append[],
    fresh: boolean,
  ): Decision {
    const after = appends.length;
    let events: ChatEvent[];
    try {
      events = decide(pending.command, entry.state);
    } catch (err) {
      return err instanceof ChatError && !fresh
        ? { pending, after, recheck: true }
        : { pending, after, error: err };
    }
    const [event, ...more] = events;
    if (!event) return answer({ pending, after }, entry.state, null);
    if (more.length > 0)
      return { pending, after, error: new Error('a conversation command appends one event') };
    // Request schemas are at least as strict as event schemas; this is the last line against a decider
    // bug putting an event into the log that consumers cannot apply.
    const issues = eventIssues(event);
    if (issues.length > 0) return { pending, after, error: new InvalidEventError(event, issues) };

    const { kind, streamId, revision } = this.#target(conversationId, event, entry);
    const at: Recorded = { seq: revision + 1, position: '' };
    const started = performance.now();
    const result = this.store
      .append(
        streamId,
        [
          {
            id: eventId(event),
            type: event.type,
            data: event.data,
            metadata: { ...pending.metadata, schemaVersion: CURRENT_SCHEMA_VERSION },
          },
        ],
        kind === 'user' ? 'any' : expectedRevision(revision),
      )
      .finally(() => this.options.metrics?.observeAppend(kind, (performance.now() - started) / 1000));
    const decision: Decision = { pending, after, own: appends.length };
    appends.push({ decision, event, kind, at, result, folded: false });
    return decision;
  }

  /** Folds an issued append's event into the state and answers its command from there. */
  #fold(entry: CachedConversation, append: Append): void {
    if (append.kind !== 'user') {
      entry.revisions[append.kind] = append.at.seq;
      evolve(entry.state, append.event, append.at);
    }
    append.folded = true;
    answer(append.decision, entry.state, append.at);
  }

  /** Waits for the batch's appends and fills in the positions the store assigned. */
  async #settle(appends: readonly Append[]): Promise<AppendOutcome[]> {
    const settled = await Promise.allSettled(appends.map((a) => a.result));
    return settled.map((result, i): AppendOutcome => {
      const append = appends[i] as Append;
      if (result.status === 'rejected') {
        if (!(result.reason instanceof WrongExpectedVersionError))
          return { status: 'failed', error: result.reason };
        this.options.metrics?.conflict(append.kind);
        return { status: 'behind', conflict: result.reason };
      }
      if (append.kind !== 'user' && result.value.nextExpectedRevision !== append.at.seq) {
        // The store already held this event (a derived id another instance appended): we were behind.
        this.options.metrics?.conflict(append.kind);
        return { status: 'behind', conflict: null };
      }
      append.at.position = result.value.position;
      if (append.kind === 'user') append.at.seq = result.value.nextExpectedRevision;
      return { status: 'confirmed' };
    });
  }

  /** Typing streams keep an hour (stream metadata); set once per conversation, after its first event. */
  async #setTypingRetention(
    conversationId: string,
    entry: CachedConversation,
    appends: readonly Append[],
    outcomes: readonly AppendOutcome[],
  ): Promise<void> {
    if (entry.typingRetentionSet) return;
    if (!appends.some((a, i) => a.kind === 'typing' && outcomes[i]?.status === 'confirmed')) return;
    entry.typingRetentionSet = true;
    await this.store
      .setStreamMetadata(typingStream(conversationId), { maxAgeSeconds: TYPING_MAX_AGE_SECONDS })
      .catch((err: unknown) => this.options.logger.warn({ err }, 'could not set typing stream max age'));
  }

  #target(
    conversationId: string,
    event: ChatEvent,
    entry: CachedConversation,
  ): { kind: StreamKind; streamId: string; revision: number } {
    switch (event.type) {
      case 'ConversationRead':
        return {
          kind: 'receipts',
          streamId: receiptsStream(conversationId),
          revision: entry.revisions.receipts,
        };
      case 'TypingStarted':
        return { kind: 'typing', streamId: typingStream(conversationId), revision: entry.revisions.typing };
      case 'ConversationMuted':
      case 'NotificationsRead':
        return { kind: 'user', streamId: userStream(event.data.userId), revision: -1 };
      case 'ConversationStarted':
      case 'MemberJoined':
      case 'MemberLeft':
      case 'MessageSent':
      case 'MessageEdited':
      case 'MessageDeleted':
        return {
          kind: 'conversation',
          streamId: conversationStream(conversationId),
          revision: entry.revisions.conversation,
        };
      default: {
        const unknownEvent: never = event;
        throw new Error(`no stream for ${JSON.stringify(unknownEvent)}`);
      }
    }
  }
}

/** Builds the command's answer from the state it left (a failure to is a bug, answered as one). */
const answer = (decision: Decision, state: ConversationState, appended: Recorded | null): Decision => {
  try {
    decision.answer = decision.pending.respond(state, appended);
  } catch (err) {
    decision.error = err;
  }
  return decision;
};

const expectedRevision = (revision: number): ExpectedRevision => (revision < 0 ? 'no_stream' : revision);

/** The version conflict on the typing stream, if any: it tells the revision scavenged events left. */
const typingConflict = (conversationId: string, outcomes: readonly AppendOutcome[]) => {
  for (const outcome of outcomes) {
    if (outcome.status === 'behind' && outcome.conflict?.streamId === typingStream(conversationId))
      return outcome.conflict;
  }
  return undefined;
};
