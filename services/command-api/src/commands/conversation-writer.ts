import {
  ChatError,
  type ChatEvent,
  CURRENT_SCHEMA_VERSION,
  conversationStream,
  parseEvent,
  receiptsStream,
  TYPING_MAX_AGE_SECONDS,
  typingStream,
  upcasters,
  userStream,
} from '@chat/events';
import {
  type EventStore,
  type ExpectedRevision,
  type RecordedEvent,
  WrongExpectedVersionError,
} from '@chat/eventstore';
import type { Logger } from 'pino';
import type { ConversationCommand } from '../conversations/commands.js';
import { decide, evolve } from '../conversations/decider.js';
import { type ConversationState, initialState } from '../conversations/state.js';
import { eventId } from './ids.js';

export type CommandMetadata = { userId: string; correlationId: string; causationId: string | null };

/** The event a command appended: its revision in its stream (`seq` for conversation events). */
export type AppendedEvent = { event: ChatEvent; seq: number; position: string };

export type WriterMetrics = {
  observeAppend: (stream: StreamKind, seconds: number) => void;
  conflict: (stream: StreamKind) => void;
  retry: () => void;
};

type StreamKind = 'conversation' | 'receipts' | 'typing' | 'user';

/** One conversation's cached state and the revisions of the streams it was folded from. */
type Entry = {
  state: ConversationState;
  revisions: { conversation: number; receipts: number; typing: number };
  typingMetadataSet: boolean;
};

type Pending = {
  command: ConversationCommand;
  metadata: CommandMetadata;
  respond: (state: ConversationState, appended: AppendedEvent | null) => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  attempts: number;
};

/** The commands waiting for one conversation; they run one batch at a time. */
type Lane = { queue: Pending[]; running: boolean; freshNext: boolean };

type SpeculativeAppend = {
  event: ChatEvent;
  kind: StreamKind;
  seq: number;
  placeholder: string;
  promise: Promise<{ nextExpectedRevision: number; position: string }>;
  started: number;
};

/** `before`: appends issued before this command was decided; `own`: index of its own append or -1. */
type BatchOutcome = {
  pending: Pending;
  before: number;
  own: number;
  result?: unknown;
  error?: unknown;
  verify?: boolean;
};

const MAX_BATCH = 200;
/** Stands in for a position until the append is confirmed; never a valid position (32 hex digits). */
const PLACEHOLDER = 'pending-append:';

const TYPING_HISTORY_ON_LOAD = 50;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The one command handler of the conversation streams (STYLE.md): state from an in-process cache,
 * `decide`, append with the expected revision, retry on a version conflict.
 *
 * Commands on one conversation run one at a time in this process, so the cache is the truth for
 * everything this process wrote and an append conflicts only when another instance wrote in between.
 * The cache is trusted without reading the store on the hot path; a conflict catches up (reads only
 * newer events) and decides again. A refusal decided on cached state is re-checked once against
 * caught-up state, so another instance's recent writes never cause a wrong 404/403/409.
 */
export class ConversationWriter {
  readonly #cache = new Map<string, Entry>();
  readonly #lanes = new Map<string, Lane>();

  constructor(
    private readonly store: EventStore,
    private readonly options: {
      logger: Logger;
      metrics?: WriterMetrics;
      /** Conversations kept in the cache (least recently used are dropped). */
      maxCached?: number;
      /** Attempts after a version conflict before answering 503. */
      maxRetries?: number;
    },
  ) {}

  /**
   * Decides `command` on the conversation and appends what it produces. `respond` turns the state
   * after the command (and the appended event, or null when nothing was appended) into the answer.
   */
  execute<R>(
    conversationId: string,
    command: ConversationCommand,
    metadata: CommandMetadata,
    respond: (state: ConversationState, appended: AppendedEvent | null) => R,
  ): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      let lane = this.#lanes.get(conversationId);
      if (!lane) {
        lane = { queue: [], running: false, freshNext: false };
        this.#lanes.set(conversationId, lane);
      }
      lane.queue.push({
        command,
        metadata,
        respond,
        resolve: (value) => resolve(value as R),
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

  /**
   * Runs a conversation's queued commands. A lone command is decided, appended and folded in turn.
   * Commands that queued up while an append was in flight are decided together, one after the other on
   * the state each leaves behind, and their appends (expected revisions N, N+1, …) are issued at once,
   * so the event store's group commit writes them in one transaction: a busy conversation costs one
   * commit per batch instead of one per message.
   */
  async #drain(conversationId: string, lane: Lane): Promise<void> {
    lane.running = true;
    try {
      while (lane.queue.length > 0) {
        const batch = lane.queue.splice(0, MAX_BATCH);
        const [only] = batch;
        if (batch.length === 1 && only) {
          try {
            only.resolve(await this.#run(conversationId, only.command, only.metadata, only.respond));
          } catch (err) {
            only.reject(err);
          }
        } else {
          await this.#runBatch(conversationId, lane, batch);
        }
      }
    } finally {
      lane.running = false;
      if (lane.queue.length === 0) this.#lanes.delete(conversationId);
    }
  }

  async #run<R>(
    conversationId: string,
    command: ConversationCommand,
    metadata: CommandMetadata,
    respond: (state: ConversationState, appended: AppendedEvent | null) => R,
  ): Promise<R> {
    let entry = this.#cache.get(conversationId);
    let fresh = false;
    if (entry) {
      this.#cache.delete(conversationId);
      this.#cache.set(conversationId, entry);
    } else {
      entry = await this.#load(conversationId);
      fresh = true;
    }
    const maxRetries = this.options.maxRetries ?? 10;
    for (let attempt = 0; ; attempt++) {
      let events: ChatEvent[];
      try {
        events = decide(command, entry.state);
      } catch (err) {
        if (err instanceof ChatError && !fresh) {
          await this.#catchUp(conversationId, entry);
          fresh = true;
          continue;
        }
        throw err;
      }
      const [event] = events;
      if (!event) return respond(entry.state, null);
      if (events.length > 1) throw new Error('a conversation command appends at most one event');

      const target = this.#target(conversationId, event, entry);
      let result: { nextExpectedRevision: number; position: string };
      const started = performance.now();
      try {
        if (target.kind === 'typing' && !entry.typingMetadataSet) {
          await this.store.setStreamMetadata(target.streamId, { maxAgeSeconds: TYPING_MAX_AGE_SECONDS });
          entry.typingMetadataSet = true;
        }
        result = await this.store.append(
          target.streamId,
          [{ id: eventId(event), type: event.type, data: event.data, metadata: this.#metadata(metadata) }],
          target.expected,
        );
      } catch (err) {
        if (err instanceof WrongExpectedVersionError && attempt < maxRetries) {
          this.options.metrics?.conflict(target.kind);
          this.options.metrics?.retry();
          // Another instance wrote this conversation. Instances that keep colliding would retry in
          // lockstep; a short random pause, growing per attempt, lets one of them through first.
          if (attempt > 0) await sleep(Math.random() * 2 ** attempt);
          await this.#catchUp(conversationId, entry, err);
          fresh = true;
          continue;
        }
        // The append may or may not have happened: forget what we knew and let the next command reload.
        this.#cache.delete(conversationId);
        if (err instanceof WrongExpectedVersionError)
          throw new ChatError('unavailable', 'too many concurrent writers, try again', undefined, {
            cause: err,
          });
        throw new ChatError('unavailable', 'the event store is unavailable', undefined, { cause: err });
      } finally {
        this.options.metrics?.observeAppend(target.kind, (performance.now() - started) / 1000);
      }

      const revision = target.kind === 'user' ? result.nextExpectedRevision : entry.revisions[target.kind];
      if (target.kind !== 'user' && result.nextExpectedRevision !== revision + 1) {
        // The store already held this event (a deterministic id appended by another instance):
        // our cache was behind. Catch up and decide again; the retry is answered from the state.
        await this.#catchUp(conversationId, entry);
        fresh = true;
        continue;
      }
      const appended = { event, seq: result.nextExpectedRevision, position: result.position };
      if (target.kind !== 'user') {
        entry.revisions[target.kind] = result.nextExpectedRevision;
        evolve(entry.state, { ...event, seq: appended.seq, position: appended.position });
      }
      this.#remember(conversationId, entry);
      return respond(entry.state, appended);
    }
  }

  async #runBatch(conversationId: string, lane: Lane, batch: Pending[]): Promise<void> {
    let entry = this.#cache.get(conversationId);
    let fresh = lane.freshNext;
    lane.freshNext = false;
    if (entry) {
      this.#cache.delete(conversationId);
      this.#cache.set(conversationId, entry);
    } else {
      try {
        entry = await this.#load(conversationId);
      } catch (err) {
        for (const pending of batch) pending.reject(err);
        return;
      }
      fresh = true;
    }

    // Decide every command on the state the previous one left (appends not yet confirmed: their
    // records carry a placeholder position until the store answers).
    const outcomes: BatchOutcome[] = [];
    const appends: SpeculativeAppend[] = [];
    for (const pending of batch) {
      const before = appends.length;
      let events: ChatEvent[];
      try {
        events = decide(pending.command, entry.state);
      } catch (err) {
        outcomes.push({
          pending,
          before,
          own: -1,
          ...(err instanceof ChatError && !fresh ? { verify: true } : { error: err }),
        });
        continue;
      }
      const [event] = events;
      try {
        if (!event) {
          outcomes.push({ pending, before, own: -1, result: pending.respond(entry.state, null) });
          continue;
        }
        const target = this.#target(conversationId, event, entry);
        const placeholder = `${PLACEHOLDER}${appends.length}`;
        const seq = target.kind === 'user' ? -1 : entry.revisions[target.kind] + 1;
        const promise = this.store.append(
          target.streamId,
          [
            {
              id: eventId(event),
              type: event.type,
              data: event.data,
              metadata: this.#metadata(pending.metadata),
            },
          ],
          target.expected,
        );
        promise.catch(() => undefined);
        if (target.kind !== 'user') {
          entry.revisions[target.kind] = seq;
          evolve(entry.state, { ...event, seq, position: placeholder });
        }
        appends.push({ event, kind: target.kind, seq, placeholder, promise, started: performance.now() });
        outcomes.push({
          pending,
          before,
          own: appends.length - 1,
          result: pending.respond(entry.state, { event, seq, position: placeholder }),
        });
      } catch (err) {
        outcomes.push({ pending, before, own: -1, error: err });
      }
    }

    const settled = await Promise.allSettled(appends.map((a) => a.promise));
    const positions = new Map<string, string>();
    let firstFailure = -1;
    settled.forEach((result, i) => {
      const append = appends[i]!;
      this.options.metrics?.observeAppend(append.kind, (performance.now() - append.started) / 1000);
      const ok =
        result.status === 'fulfilled' &&
        (append.kind === 'user' || result.value.nextExpectedRevision === append.seq);
      if (result.status === 'fulfilled' && ok) positions.set(append.placeholder, result.value.position);
      else {
        if (firstFailure < 0) firstFailure = i;
        if (result.status === 'rejected' && result.reason instanceof WrongExpectedVersionError)
          this.options.metrics?.conflict(append.kind);
      }
    });

    if (firstFailure < 0) {
      for (const append of appends) {
        const position = positions.get(append.placeholder);
        if (position) settlePosition(entry.state, append.event, append.placeholder, position);
      }
      this.#remember(conversationId, entry);
      if (!entry.typingMetadataSet && appends.some((a) => a.kind === 'typing')) {
        entry.typingMetadataSet = true;
        await this.store
          .setStreamMetadata(typingStream(conversationId), { maxAgeSeconds: TYPING_MAX_AGE_SECONDS })
          .catch((err: unknown) => this.options.logger.warn({ err }, 'could not set typing stream max age'));
      }
    } else {
      // Our speculative state folded an event the store refused: forget it; the next batch reloads.
      this.#cache.delete(conversationId);
    }

    const retry: Pending[] = [];
    for (const outcome of outcomes) {
      const { pending, own, before } = outcome;
      const ownFailed = own >= 0 && !positions.has(appends[own]!.placeholder);
      const decidedOnRefusedEvent = firstFailure >= 0 && own < 0 && before > firstFailure;
      if (ownFailed || decidedOnRefusedEvent || outcome.verify) {
        const reason = ownFailed ? settled[own] : undefined;
        const storeError =
          reason?.status === 'rejected' && !(reason.reason instanceof WrongExpectedVersionError);
        if (storeError) {
          pending.reject(
            new ChatError('unavailable', 'the event store is unavailable', undefined, {
              cause: reason.reason,
            }),
          );
        } else if (++pending.attempts > (this.options.maxRetries ?? 10)) {
          pending.reject(new ChatError('unavailable', 'too many concurrent writers, try again'));
        } else {
          retry.push(pending);
        }
        continue;
      }
      if (outcome.error !== undefined) pending.reject(outcome.error);
      else pending.resolve(withPositions(outcome.result, positions));
    }
    if (retry.length === 0) return;
    lane.queue.unshift(...retry);
    if (firstFailure >= 0) {
      this.options.metrics?.retry();
      await sleep(Math.random() * 2 ** Math.min(retry[0]?.attempts ?? 1, 6));
    } else {
      // Refusals decided on cached state: check them again on caught-up state before answering.
      try {
        await this.#catchUp(conversationId, entry);
        lane.freshNext = true;
      } catch {
        this.#cache.delete(conversationId);
      }
    }
  }

  #target(
    conversationId: string,
    event: ChatEvent,
    entry: Entry,
  ): { kind: StreamKind; streamId: string; expected: ExpectedRevision } {
    const expected = (revision: number): ExpectedRevision => (revision < 0 ? 'no_stream' : revision);
    switch (event.type) {
      case 'ConversationRead':
        return {
          kind: 'receipts',
          streamId: receiptsStream(conversationId),
          expected: expected(entry.revisions.receipts),
        };
      case 'TypingStarted':
        return {
          kind: 'typing',
          streamId: typingStream(conversationId),
          expected: expected(entry.revisions.typing),
        };
      case 'ConversationMuted':
        return { kind: 'user', streamId: userStream(event.data.userId), expected: 'any' };
      default:
        return {
          kind: 'conversation',
          streamId: conversationStream(conversationId),
          expected: expected(entry.revisions.conversation),
        };
    }
  }

  #metadata(metadata: CommandMetadata) {
    return { ...metadata, schemaVersion: CURRENT_SCHEMA_VERSION };
  }

  /** Only conversations that exist are cached, so probing random ids costs no memory. */
  #remember(conversationId: string, entry: Entry) {
    if (entry.revisions.conversation < 0) return;
    if (this.#cache.has(conversationId)) return;
    this.#cache.set(conversationId, entry);
    const max = this.options.maxCached ?? 10_000;
    for (const key of this.#cache.keys()) {
      if (this.#cache.size <= max) break;
      if (!this.#lanes.has(key)) this.#cache.delete(key);
    }
  }

  async #load(conversationId: string): Promise<Entry> {
    const entry: Entry = {
      state: initialState(),
      revisions: { conversation: -1, receipts: -1, typing: -1 },
      typingMetadataSet: false,
    };
    await this.#catchUp(conversationId, entry);
    const typing = await this.#read(() =>
      this.store.readStream(typingStream(conversationId), {
        direction: 'backwards',
        maxCount: TYPING_HISTORY_ON_LOAD,
      }),
    );
    for (const recorded of typing.reverse()) this.#fold(entry, 'typing', recorded);
    entry.typingMetadataSet = entry.revisions.typing >= 0;
    return entry;
  }

  /** Reads only the events newer than what the entry has seen and folds them in log order. */
  async #catchUp(conversationId: string, entry: Entry, conflict?: WrongExpectedVersionError) {
    const [conversation, receipts, typing] = await this.#read(() =>
      Promise.all([
        this.store.readStream(conversationStream(conversationId), {
          fromRevision: entry.revisions.conversation + 1,
        }),
        this.store.readStream(receiptsStream(conversationId), { fromRevision: entry.revisions.receipts + 1 }),
        conflict?.streamId === typingStream(conversationId)
          ? this.store.readStream(conflict.streamId, { fromRevision: entry.revisions.typing + 1 })
          : Promise.resolve([]),
      ]),
    );
    const merged = [
      ...conversation.map((e) => ['conversation', e] as const),
      ...receipts.map((e) => ['receipts', e] as const),
      ...typing.map((e) => ['typing', e] as const),
    ].sort(([, a], [, b]) => (a.position < b.position ? -1 : a.position > b.position ? 1 : 0));
    for (const [kind, recorded] of merged) this.#fold(entry, kind, recorded);
    // Scavenged typing events leave a revision we cannot read back: take it from the conflict.
    if (conflict?.streamId === typingStream(conversationId) && conflict.actual > entry.revisions.typing)
      entry.revisions.typing = conflict.actual;
  }

  #fold(entry: Entry, kind: 'conversation' | 'receipts' | 'typing', recorded: RecordedEvent) {
    const upcast = upcasters.upcast(recorded);
    const event = parseEvent(upcast.type, upcast.data);
    evolve(entry.state, { ...event, seq: recorded.revision, position: recorded.position });
    entry.revisions[kind] = Math.max(entry.revisions[kind], recorded.revision);
  }

  async #read<T>(read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (err) {
      throw new ChatError('unavailable', 'the event store is unavailable', undefined, { cause: err });
    }
  }
}

/** Replaces a placeholder position in the state's records by the one the store assigned. */
const settlePosition = (
  state: ConversationState,
  event: ChatEvent,
  placeholder: string,
  position: string,
) => {
  const settle = (record: { position: string } | null | undefined) => {
    if (record && record.position === placeholder) record.position = position;
  };
  switch (event.type) {
    case 'ConversationStarted':
      settle(state.started);
      for (const member of state.members.values()) settle(member);
      return;
    case 'MemberJoined':
      settle(state.members.get(event.data.userId));
      return;
    case 'MessageSent':
      settle(state.messages.get(event.data.messageId));
      return;
    case 'MessageDeleted':
      settle(state.messages.get(event.data.messageId)?.deleted);
      return;
    default:
      return;
  }
};

/** A copy of a command's answer with placeholder positions replaced by the confirmed ones. */
const withPositions = (value: unknown, positions: ReadonlyMap<string, string>): unknown => {
  if (typeof value === 'string')
    return value.startsWith(PLACEHOLDER) ? (positions.get(value) ?? value) : value;
  if (Array.isArray(value)) return value.map((v) => withPositions(v, positions));
  if (value !== null && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withPositions(v, positions)]));
  return value;
};
