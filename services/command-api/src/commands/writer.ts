import {
  ChatError,
  type ChatEvent,
  CURRENT_SCHEMA_VERSION,
  EVENT_STREAM_CATEGORY,
  eventIssues,
  type StreamCategory,
  streamIdOf,
} from '@chat/events';
import {
  type AppendResult,
  ErasedUserError,
  type EventStore,
  type ExpectedRevision,
  WrongExpectedVersionError,
} from '@chat/eventstore';
import { RETRY, retryDelayMs, sleep } from '@chat/retry';
import type { Logger } from 'pino';
import type { ConversationCommand } from '../conversations/commands.js';
import type { ConversationState, Recorded } from '../conversations/state.js';
import type { ReportCommand, ReportState } from '../reports/decider.js';
import type { UserCommand } from '../users/commands.js';
import type { UserState } from '../users/state.js';
import { type Aggregate, type Folded, StateCache } from './aggregate.js';
import {
  type CachedConversation,
  conversationAggregate,
  type FoldedStream,
  storeUnavailable,
} from './conversation-aggregate.js';
import { eventId } from './ids.js';
import { type CachedReport, reportAggregate } from './report-aggregate.js';
import { type CachedUser, userAggregate } from './user-aggregate.js';

export type CommandMetadata = {
  userId: string;
  correlationId: string;
  causationId: string | null;
  /**
   * `performance.now()` after which the requester no longer waits (NATS `budgetMs`): a command still
   * queued then is refused `unavailable` without being decided. Not part of the event's metadata.
   */
  expiresAt?: number;
};

export type WriterMetrics = {
  observeAppend: (stream: StreamCategory, seconds: number) => void;
  conflict: (stream: StreamCategory) => void;
  retry: () => void;
};

/**
 * `respond` turns the state right after the command (and where its event landed, or null when it
 * appended nothing) into its answer. The answer may keep `Recorded` objects of the state: their
 * positions are final once `execute` resolves.
 */
type Respond<S, A> = (state: S, appended: Recorded | null) => A;

type Pending<C, S> = {
  command: C;
  metadata: CommandMetadata;
  respond: Respond<S, unknown>;
  resolve: (answer: unknown) => void;
  reject: (error: unknown) => void;
  /** Times the command was decided and had to be decided again. */
  attempts: number;
};

/** The commands waiting for one aggregate; they run one batch at a time. */
type Lane<C, S> = { queue: Pending<C, S>[]; running: boolean; freshNext: boolean };

/** What one command of a batch came to. */
type Decision<C, S> = {
  pending: Pending<C, S>;
  /** How many of the batch's appends were issued before it was decided: its decision relied on them. */
  after: number;
  /** Index of its own append in the batch. */
  own?: number;
  answer?: unknown;
  error?: unknown;
  /** Refused on cached state: decided again on caught-up state before the refusal is answered. */
  recheck?: boolean;
};

type Append<C, S> = {
  decision: Decision<C, S>;
  event: ChatEvent;
  streamId: string;
  kind: StreamCategory;
  /** Whether the state is folded from the event's stream (appended with its expected revision). */
  folds: boolean;
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
 * The one command handler (STYLE.md): state from an in-process cache, `decide`, append with the
 * expected revision, retry on a version conflict — for every kind of aggregate (`Aggregate`):
 * conversations, and users for what is decided on a user's own stream.
 *
 * Commands on one aggregate queue in a lane and run in batches, a lone command being a batch of one.
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
export class CommandWriter<C, S, K extends StreamCategory, E extends Folded<S, K>> {
  readonly #lanes = new Map<string, Lane<C, S>>();
  readonly #cache: StateCache<E>;
  readonly #folds: ReadonlySet<StreamCategory>;

  constructor(
    private readonly store: EventStore,
    private readonly aggregate: Aggregate<C, S, K, E>,
    private readonly options: {
      logger: Logger;
      metrics?: WriterMetrics;
      /** Aggregates kept in the cache (least recently used are dropped). */
      maxCached?: number;
    },
  ) {
    this.#folds = new Set(aggregate.streams);
    this.#cache = new StateCache<E>({
      maxCached: options.maxCached ?? 10_000,
      exists: (entry) => aggregate.exists(entry),
      busy: (id) => this.#lanes.has(id),
    });
  }

  /** Decides `command` on the aggregate `id`, appends what it produces and answers with `respond`. */
  execute<A>(id: string, command: C, metadata: CommandMetadata, respond: Respond<S, A>): Promise<A> {
    return new Promise<A>((resolve, reject) => {
      let lane = this.#lanes.get(id);
      if (!lane) {
        lane = { queue: [], running: false, freshNext: false };
        this.#lanes.set(id, lane);
      }
      lane.queue.push({
        command,
        metadata,
        respond,
        resolve: (answer) => resolve(answer as A),
        reject,
        attempts: 0,
      });
      if (!lane.running) void this.#drain(id, lane);
    });
  }

  /** Drops every cached state (tests, or after the store was swapped). */
  clear(): void {
    this.#cache.clear();
  }

  async #drain(id: string, lane: Lane<C, S>): Promise<void> {
    lane.running = true;
    try {
      while (lane.queue.length > 0) {
        const batch = unexpired(lane.queue.splice(0, MAX_BATCH));
        if (batch.length === 0) continue;
        try {
          await this.#runBatch(id, lane, batch);
        } catch (err) {
          // A bug, not a refusal: no command of the batch may wait forever, and the state is suspect.
          this.options.logger.error({ err, id }, 'command batch failed');
          this.#cache.forget(id);
          for (const pending of batch) if (!lane.queue.includes(pending)) pending.reject(err);
        }
      }
    } finally {
      lane.running = false;
      if (lane.queue.length === 0) this.#lanes.delete(id);
    }
  }

  async #runBatch(id: string, lane: Lane<C, S>, batch: Pending<C, S>[]): Promise<void> {
    let fresh = lane.freshNext;
    lane.freshNext = false;
    let entry = this.#cache.get(id);
    if (!entry) {
      try {
        entry = await this.aggregate.load(id);
      } catch (err) {
        for (const pending of batch) pending.reject(err);
        return;
      }
      fresh = true;
    } else if (!fresh && batch.some((p) => this.aggregate.needsFresh?.(p.command) === true)) {
      // A check that must see other instances' writes (a block, before a direct message): the cache
      // is caught up first, one read of what it has not seen.
      try {
        await this.aggregate.catchUp(id, entry, []);
      } catch (err) {
        this.#cache.forget(id);
        for (const pending of batch) pending.reject(err);
        return;
      }
      fresh = true;
    }

    const appends: Append<C, S>[] = [];
    const decisions: Decision<C, S>[] = [];
    for (const pending of batch) {
      // The next command is decided on the state the previous one left: fold its event in now.
      const previous = appends.at(-1);
      if (previous && !previous.folded) this.#fold(entry, previous);
      decisions.push(this.#decide(entry, pending, appends, fresh));
    }
    const outcomes = await this.#settle(appends);
    const last = appends.at(-1);
    if (last && !last.folded && outcomes.at(-1)?.status === 'confirmed') this.#fold(entry, last);

    // Clean: the state holds no event the store refused (only the last append is folded after its
    // confirmation, so a lone command's conflict leaves it clean). Otherwise the next batch reloads.
    const clean = appends.every((a, i) => !a.folded || !a.folds || outcomes[i]?.status === 'confirmed');
    if (clean) this.#cache.remember(id, entry);
    else this.#cache.forget(id);
    const confirmedStreams = new Set(
      appends.filter((_, i) => outcomes[i]?.status === 'confirmed').map((a) => a.streamId),
    );
    if (confirmedStreams.size > 0) await this.aggregate.confirmed?.(id, entry, confirmedStreams);

    const firstFailure = outcomes.findIndex((o) => o.status !== 'confirmed');
    const retry: Pending<C, S>[] = [];
    for (const decision of decisions) {
      const { pending } = decision;
      const own = decision.own === undefined ? undefined : outcomes[decision.own];
      if (own?.status === 'failed') {
        pending.reject(
          own.error instanceof ErasedUserError
            ? new ChatError(
                'forbidden',
                'this user was erased: their personal data cannot be written',
                undefined,
                {
                  cause: own.error,
                },
              )
            : storeUnavailable(own.error),
        );
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
      // Instances that keep colliding on one aggregate would retry in lockstep; a random pause,
      // growing with the attempts, lets one of them through first.
      for (const _ of retry) this.options.metrics?.retry();
      await sleep(retryDelayMs(RETRY.conflict, Math.max(...retry.map((p) => p.attempts))));
    }
    if (!clean || !this.#cache.has(id)) return;
    try {
      const conflicts = outcomes.flatMap((o) => (o.status === 'behind' && o.conflict ? [o.conflict] : []));
      await this.aggregate.catchUp(id, entry, conflicts);
      lane.freshNext = true;
    } catch {
      this.#cache.forget(id);
    }
  }

  /** Decides one command and issues its append; the event is folded in before the next decision. */
  #decide(entry: E, pending: Pending<C, S>, appends: Append<C, S>[], fresh: boolean): Decision<C, S> {
    const after = appends.length;
    let events: ChatEvent[];
    try {
      events = this.aggregate.decide(pending.command, entry.state);
    } catch (err) {
      return err instanceof ChatError && !fresh
        ? { pending, after, recheck: true }
        : { pending, after, error: err };
    }
    const [event, ...more] = events;
    if (!event) return answer({ pending, after }, entry.state, null);
    if (more.length > 0) return { pending, after, error: new Error('a command appends one event') };
    // Request schemas are at least as strict as event schemas; this is the last line against a decider
    // bug putting an event into the log that consumers cannot apply.
    const issues = eventIssues(event);
    if (issues.length > 0) return { pending, after, error: new InvalidEventError(event, issues) };

    const kind = EVENT_STREAM_CATEGORY[event.type];
    const folds = this.#folds.has(kind);
    const revision = folds ? entry.revisions[kind as K] : -1;
    const streamId = streamIdOf(event);
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
            metadata: {
              userId: pending.metadata.userId,
              correlationId: pending.metadata.correlationId,
              causationId: pending.metadata.causationId,
              schemaVersion: CURRENT_SCHEMA_VERSION,
            },
          },
        ],
        folds ? expectedRevision(revision) : 'any',
      )
      .finally(() => this.options.metrics?.observeAppend(kind, (performance.now() - started) / 1000));
    const decision: Decision<C, S> = { pending, after, own: appends.length };
    appends.push({ decision, event, streamId, kind, folds, at, result, folded: false });
    return decision;
  }

  /** Folds an issued append's event into the state and answers its command from there. */
  #fold(entry: E, append: Append<C, S>): void {
    if (append.folds) {
      entry.revisions[append.kind as K] = append.at.seq;
      this.aggregate.evolve(entry.state, append.event, append.at);
    }
    append.folded = true;
    answer(append.decision, entry.state, append.at);
  }

  /** Waits for the batch's appends and fills in the positions the store assigned. */
  async #settle(appends: readonly Append<C, S>[]): Promise<AppendOutcome[]> {
    const settled = await Promise.allSettled(appends.map((a) => a.result));
    return settled.map((result, i): AppendOutcome => {
      const append = appends[i] as Append<C, S>;
      if (result.status === 'rejected') {
        if (!(result.reason instanceof WrongExpectedVersionError))
          return { status: 'failed', error: result.reason };
        this.options.metrics?.conflict(append.kind);
        return { status: 'behind', conflict: result.reason };
      }
      if (append.folds && result.value.nextExpectedRevision !== append.at.seq) {
        // The store already held this event (a derived id another instance appended): we were behind.
        this.options.metrics?.conflict(append.kind);
        return { status: 'behind', conflict: null };
      }
      append.at.position = result.value.position;
      if (!append.folds) append.at.seq = result.value.nextExpectedRevision;
      return { status: 'confirmed' };
    });
  }
}

type WriterOptions = ConstructorParameters<typeof CommandWriter>[2];

/** The writer of conversation commands (conversation, receipts and typing streams; mutes to users'). */
export class ConversationWriter extends CommandWriter<
  ConversationCommand,
  ConversationState,
  FoldedStream,
  CachedConversation
> {
  constructor(store: EventStore, options: WriterOptions) {
    super(store, conversationAggregate(store, options.logger), options);
  }
}

/** The writer of what is decided on a user's own stream (notification levels). */
export class UserWriter extends CommandWriter<UserCommand, UserState, 'user', CachedUser> {
  constructor(store: EventStore, options: WriterOptions) {
    super(store, userAggregate(store), options);
  }
}

/** The writer of moderation reports, each on its own stream (issue 16). */
export class ReportWriter extends CommandWriter<ReportCommand, ReportState, 'report', CachedReport> {
  constructor(store: EventStore, options: WriterOptions) {
    super(store, reportAggregate(store), options);
  }
}

/**
 * The commands whose requester still waits; the others are refused `unavailable` undecided. Under
 * overload a lane's queue outlives the gateway's timeout: running those commands would write messages
 * whose senders were already told they failed, and spend the capacity the live ones need.
 */
const unexpired = <C, S>(batch: Pending<C, S>[]): Pending<C, S>[] => {
  const now = performance.now();
  return batch.filter((pending) => {
    if (!expired(pending.metadata.expiresAt, now)) return true;
    pending.reject(commandExpired());
    return false;
  });
};

/** Whether a command's requester has stopped waiting (`expiresAt` from its metadata, `now` by `performance.now()`). */
export const expired = (expiresAt: number | undefined, now = performance.now()): boolean =>
  expiresAt !== undefined && expiresAt <= now;

/** The answer to a command not run because its requester stopped waiting. */
export const commandExpired = (): ChatError =>
  new ChatError('unavailable', 'the command waited longer than its requester; it was not run');

/** Builds the command's answer from the state it left (a failure to is a bug, answered as one). */
const answer = <C, S>(decision: Decision<C, S>, state: S, appended: Recorded | null): Decision<C, S> => {
  try {
    decision.answer = decision.pending.respond(state, appended);
  } catch (err) {
    decision.error = err;
  }
  return decision;
};

const expectedRevision = (revision: number): ExpectedRevision => (revision < 0 ? 'no_stream' : revision);
