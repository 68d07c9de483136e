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
  readonly #tails = new Map<string, Promise<unknown>>();

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
    return this.#serialized(conversationId, () => this.#run(conversationId, command, metadata, respond));
  }

  /** Drops every cached conversation (tests, or after the store was swapped). */
  clear(): void {
    this.#cache.clear();
  }

  #serialized<R>(key: string, fn: () => Promise<R>): Promise<R> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return next;
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
      if (!this.#tails.has(key)) this.#cache.delete(key);
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
