import type { EventMetadata } from '@chat/events';

/**
 * The event store port (DESIGN.md "Event store"). Two adapters implement it: postgres (default) and
 * esdb (EventStoreDB / KurrentDB). Both pass one shared contract suite.
 */

/** `any`: no check; `no_stream`: the stream must not exist; a number: the stream's last revision. */
export type ExpectedRevision = 'any' | 'no_stream' | number;

export type NewEvent = {
  /** UUID; deterministic where a retry must not duplicate. Appending an id that exists is a no-op. */
  id: string;
  type: string;
  data: Record<string, unknown>;
  metadata: EventMetadata;
};

export type RecordedEvent = {
  id: string;
  type: string;
  streamId: string;
  /** 0-based, gap-free per stream. */
  revision: number;
  /** Global log position: 32 lower-case hex digits; string order is log order. */
  position: string;
  /** ISO-8601 UTC with milliseconds. */
  occurredAt: string;
  data: Record<string, unknown>;
  metadata: EventMetadata;
};

export type AppendResult = {
  /** Revision of the stream's last event after the append. */
  nextExpectedRevision: number;
  /** Position of the last event appended (or of the existing event on an idempotent repeat). */
  position: string;
  /**
   * The events' `occurredAt` as stored, when this append stored them (not on an idempotent repeat) and
   * the adapter knows it (Postgres): with it a writer can publish the recorded event without reading it
   * back.
   */
  occurredAt?: string;
};

export type ReadStreamOptions = {
  direction?: 'forwards' | 'backwards';
  /** Inclusive. Defaults to the start (forwards) or the end (backwards). */
  fromRevision?: number;
  maxCount?: number;
};

export type EventFilter = {
  streamPrefixes?: readonly string[];
  eventTypes?: readonly string[];
};

export type ReadAllOptions = {
  /** Exclusive: events strictly after this position. Defaults to the start of the log. */
  fromPosition?: string;
  maxCount?: number;
  filter?: EventFilter;
};

export type SubscribeOptions = {
  /** Exclusive, as in readAll. */
  fromPosition?: string;
  filter?: EventFilter;
  /** Largest batch handed out at once. */
  batchSize?: number;
  signal?: AbortSignal;
};

export type StreamMetadata = { maxAgeSeconds?: number };

export interface EventStore {
  append(
    streamId: string,
    events: readonly NewEvent[],
    expectedRevision: ExpectedRevision,
  ): Promise<AppendResult>;
  /** Events of one stream; an unknown stream reads as empty. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** The stream's last revision, or -1 when it does not exist. */
  streamRevision(streamId: string): Promise<number>;
  /** A page of the global log in log order. */
  readAll(options?: ReadAllOptions): Promise<RecordedEvent[]>;
  /**
   * Catch-up subscription: every event after `fromPosition`, in log order, then live events, as batches.
   * Never skips an event, also one that commits late. Ends when `signal` aborts or `close()` is called.
   */
  subscribeToAll(options?: SubscribeOptions): AsyncIterable<RecordedEvent[]>;
  /** Position of the newest event visible to subscribers (START_POSITION when the log is empty). */
  headPosition(): Promise<string>;
  setStreamMetadata(streamId: string, metadata: StreamMetadata): Promise<void>;
  getStreamMetadata(streamId: string): Promise<StreamMetadata>;
  /** Answers when the store is reachable; throws otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * Postgres only (the data keys live in its database): `append`, storing or checking in the same
   * transaction the data keys the events' personal fields were sealed with (`EncryptingEventStore`).
   * Throws DataKeyRefusedError, appending nothing, when one of them is not the author's stored key
   * (another process stored theirs first, or the author was erased).
   */
  appendWithKeys?(
    streamId: string,
    events: readonly NewEvent[],
    expectedRevision: ExpectedRevision,
    keys: readonly DataKeyClaim[],
  ): Promise<AppendResult>;
  /**
   * Postgres only: `subscribeToAll`, each page carrying the data keys its personal fields name, read
   * with the page (`EncryptingEventStore` opens them without a query of its own). A page may carry none
   * of them (a catch-up page, where one query per page costs less than a lookup per event) or only some;
   * the reader fetches what a page lacks.
   */
  subscribeToAllWithKeys?(options?: SubscribeOptions): AsyncIterable<KeyedPage>;
}

/**
 * A data key as a read of the log found it in the same snapshot as the page: `wrapped` under the master
 * key, or null when an erasure destroyed it. See `subscribeToAllWithKeys`.
 */
export type StoredDataKey = { userId: string; wrapped: Buffer | null };

/** A page of the log and the stored data keys its personal fields name (by kid; see StoredDataKey). */
export type KeyedPage = { events: RecordedEvent[]; dataKeys: ReadonlyMap<string, StoredDataKey> };

/**
 * A data key an append's events were sealed with: `wrapped` (the key under the master key) is stored
 * for the author unless they have a key or were erased; without it the key is only checked to still be
 * theirs. Either way the append goes ahead only if the author's stored key is this one.
 */
export type DataKeyClaim = { userId: string; kid: string; wrapped: Buffer | null };

/** An append's data key is not its author's stored key (see `appendWithKeys`); nothing was appended. */
export class DataKeyRefusedError extends Error {
  override readonly name = 'DataKeyRefusedError';
  constructor(
    readonly streamId: string,
    /** `erased`: an author was erased; `taken`: an author has another key. */
    readonly reason: 'erased' | 'taken',
  ) {
    super(`stream ${streamId}: a data key of the append is not its author's (${reason})`);
  }
}

export class WrongExpectedVersionError extends Error {
  override readonly name = 'WrongExpectedVersionError';
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedRevision,
    readonly actual: number,
    options?: { cause?: unknown },
  ) {
    super(`stream ${streamId}: expected revision ${String(expected)}, actual ${actual}`, options);
  }
}

/**
 * Some of an append's event ids are already recorded, but not as exactly this append in this stream
 * (a partial repeat, or ids reused in another stream). A full repeat is not an error: it returns the
 * earlier result.
 */
export class EventIdConflictError extends Error {
  override readonly name = 'EventIdConflictError';
  constructor(
    readonly streamId: string,
    readonly eventIds: readonly string[],
    options?: { cause?: unknown },
  ) {
    super(`stream ${streamId}: event ids already recorded elsewhere or in part`, options);
  }
}

export class EventStoreUnavailableError extends Error {
  override readonly name: string = 'EventStoreUnavailableError';
}

/**
 * An append waited too long for its turn: appends to one log are serialised, and whatever holds the
 * log's append lock (usually a transaction that wrote events and stays open) did not let go in time.
 * Nothing was appended; the append may be retried.
 */
export class AppendLockTimeoutError extends EventStoreUnavailableError {
  override readonly name = 'AppendLockTimeoutError';
}

export const START_POSITION = '0'.repeat(32);

/** Positions are pairs of unsigned 64-bit integers, encoded so that string order is pair order. */
export const encodePosition = (high: bigint, low: bigint): string =>
  high.toString(16).padStart(16, '0') + low.toString(16).padStart(16, '0');

export const decodePosition = (position: string): [bigint, bigint] => {
  if (!/^[0-9a-f]{32}$/.test(position)) throw new Error(`invalid position "${position}"`);
  return [BigInt(`0x${position.slice(0, 16)}`), BigInt(`0x${position.slice(16)}`)];
};

export const isValidPosition = (position: string): boolean => /^[0-9a-f]{32}$/.test(position);
