import { once } from 'node:events';
import type { EventMetadata } from '@chat/events';
import type { Logger } from '@chat/platform';
import {
  type AllStreamResolvedEvent,
  ANY,
  type AppendExpectedRevision,
  BACKWARDS,
  END,
  WrongExpectedVersionError as EsdbWrongExpectedVersionError,
  EventStoreDBClient,
  eventTypeFilter,
  excludeSystemEvents,
  type Filter,
  FORWARDS,
  jsonEvent,
  NO_STREAM,
  type Position,
  type ReadPosition,
  type ResolvedEvent,
  START,
  StreamNotFoundError,
  streamNameFilter,
} from '@eventstore/db-client';
import {
  type AppendResult,
  decodePosition,
  type EventFilter,
  type EventStore,
  EventStoreUnavailableError,
  type ExpectedRevision,
  encodePosition,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  START_POSITION,
  type StreamMetadata,
  type SubscribeOptions,
  WrongExpectedVersionError,
} from '../port.js';
import { upcastRecorded } from '../upcast.js';
import { validateAppend } from '../validate.js';

export type EsdbEventStoreOptions = {
  /** `esdb://…` or `kurrentdb://…` (the client speaks both). */
  connectionString: string;
  logger?: Logger;
};

type EsdbRecorded = NonNullable<ResolvedEvent['event']>;

const DEFAULT_BATCH_SIZE = 1_000;

/**
 * The EventStore port over EventStoreDB / KurrentDB. Ordering, idempotency and max-age retention are the
 * server's own; this adapter maps names and positions ($all positions are the pair commit/prepare, which
 * `encodePosition` turns into the port's ordered string) and hides system events.
 */
export const createEsdbEventStore = (options: EsdbEventStoreOptions): EventStore => {
  const client = EventStoreDBClient.connectionString(
    options.connectionString.replace(/^kurrentdb:\/\//, 'esdb://'),
  );
  const logger = options.logger;
  const closing = new AbortController();

  /** Reads one page of $all forwards after `from`, skipping system events; filters the rest client-side. */
  const readAllPage = async (
    from: string,
    filter: EventFilter | undefined,
    maxCount: number,
  ): Promise<RecordedEvent[]> => {
    const out: RecordedEvent[] = [];
    let cursor = from;
    // $all reads cannot filter server-side in this client, so read in pages until enough match.
    for (;;) {
      const page: RecordedEvent[] = [];
      let scanned = 0;
      for await (const resolved of client.readAll({
        fromPosition: toReadPosition(cursor),
        maxCount: DEFAULT_BATCH_SIZE,
        direction: FORWARDS,
      })) {
        scanned++;
        const event = fromAll(resolved);
        if (!event || event.position <= cursor) continue;
        page.push(event);
      }
      for (const event of page) {
        cursor = event.position;
        if (matches(event, filter)) out.push(event);
        if (out.length >= maxCount) return out;
      }
      if (scanned < DEFAULT_BATCH_SIZE || page.length === 0) return out;
    }
  };

  const store: EventStore = {
    async append(
      streamId: string,
      events: readonly NewEvent[],
      expected: ExpectedRevision,
    ): Promise<AppendResult> {
      validateAppend(streamId, events, expected);
      try {
        const result = await client.appendToStream(
          streamId,
          events.map((e) =>
            jsonEvent({ id: e.id.toLowerCase(), type: e.type, data: e.data, metadata: e.metadata }),
          ),
          { expectedRevision: toExpected(expected) },
        );
        return {
          nextExpectedRevision: Number(result.nextExpectedRevision),
          position: result.position ? positionOf(result.position) : START_POSITION,
        };
      } catch (error) {
        if (!(error instanceof EsdbWrongExpectedVersionError)) throw unavailable(error);
        const actual = error.actualVersion === NO_STREAM ? -1 : Number(error.actualVersion);
        // The port promises idempotency by event id also when a retry carries a stale expected revision:
        // if the events right after the expected revision are exactly these, answer with their result.
        const repeat = await findRepeat(streamId, events, expected);
        if (repeat) return repeat;
        throw new WrongExpectedVersionError(streamId, expected, actual, { cause: error });
      }
    },

    async readStream(streamId: string, readOptions: ReadStreamOptions = {}): Promise<RecordedEvent[]> {
      const backwards = readOptions.direction === 'backwards';
      const out: RecordedEvent[] = [];
      try {
        for await (const resolved of client.readStream(streamId, {
          direction: backwards ? BACKWARDS : FORWARDS,
          fromRevision:
            readOptions.fromRevision === undefined
              ? backwards
                ? END
                : START
              : BigInt(readOptions.fromRevision),
          ...(readOptions.maxCount === undefined ? {} : { maxCount: readOptions.maxCount }),
        })) {
          if (resolved.event) out.push(toRecorded(resolved.event));
        }
      } catch (error) {
        if (error instanceof StreamNotFoundError) return [];
        throw unavailable(error);
      }
      return out;
    },

    async streamRevision(streamId: string): Promise<number> {
      const [last] = await store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
      return last?.revision ?? -1;
    },

    readAll(readOptions: ReadAllOptions = {}): Promise<RecordedEvent[]> {
      return readAllPage(
        readOptions.fromPosition ?? START_POSITION,
        readOptions.filter,
        readOptions.maxCount ?? DEFAULT_BATCH_SIZE,
      );
    },

    async *subscribeToAll(subscribeOptions: SubscribeOptions = {}): AsyncIterable<RecordedEvent[]> {
      const signal = subscribeOptions.signal
        ? AbortSignal.any([subscribeOptions.signal, closing.signal])
        : closing.signal;
      const from = subscribeOptions.fromPosition ?? START_POSITION;
      decodePosition(from);
      const batchSize = subscribeOptions.batchSize ?? DEFAULT_BATCH_SIZE;
      const filter = subscribeOptions.filter;
      const subscription = client.subscribeToAll({
        fromPosition: toReadPosition(from),
        filter: serverFilter(filter),
      });
      let last = from;
      try {
        while (!signal.aborted) {
          const batch: RecordedEvent[] = [];
          while (batch.length < batchSize) {
            // Object mode: read() hands out one buffered event, or null when the buffer is empty.
            const resolved: AllStreamResolvedEvent | null = subscription.read();
            if (resolved === null) break;
            const event = fromAll(resolved);
            // The server filter covers one dimension; the other (and system events) is checked here.
            if (event && event.position > last && matches(event, filter)) batch.push(event);
          }
          if (batch.length > 0) {
            last = batch.at(-1)!.position;
            yield batch;
            continue;
          }
          if (subscription.readableEnded) {
            // A catch-up subscription only ends when the server drops it: make the caller resubscribe.
            if (signal.aborted) return;
            throw new EventStoreUnavailableError('EventStoreDB subscription ended by the server');
          }
          // Wait for more data or the end; the listener that loses the race is removed by `settled`.
          const settled = new AbortController();
          const wait = AbortSignal.any([signal, settled.signal]);
          try {
            await Promise.race([
              once(subscription, 'readable', { signal: wait }),
              once(subscription, 'end', { signal: wait }),
            ]);
          } catch (error) {
            if (!signal.aborted) throw unavailable(error);
          } finally {
            settled.abort();
          }
        }
      } finally {
        await subscription.unsubscribe().catch((error: unknown) => {
          logger?.debug({ err: error }, 'esdb unsubscribe failed');
        });
      }
    },

    async headPosition(): Promise<string> {
      // The newest non-system event: system events ($metadata writes and the like) are not in our log.
      for await (const resolved of client.readAll({
        direction: BACKWARDS,
        fromPosition: END,
        maxCount: 256,
      })) {
        const event = fromAll(resolved);
        if (event) return event.position;
      }
      return START_POSITION;
    },

    async setStreamMetadata(streamId: string, metadata: StreamMetadata): Promise<void> {
      await client.setStreamMetadata(
        streamId,
        metadata.maxAgeSeconds === undefined ? {} : { maxAge: metadata.maxAgeSeconds },
      );
    },

    async getStreamMetadata(streamId: string): Promise<StreamMetadata> {
      const result = await client.getStreamMetadata(streamId);
      const maxAge = result.metadata?.maxAge;
      return typeof maxAge === 'number' ? { maxAgeSeconds: maxAge } : {};
    },

    async ping(): Promise<void> {
      try {
        for await (const _ of client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 })) break;
      } catch (error) {
        throw unavailable(error);
      }
    },

    async close(): Promise<void> {
      if (closing.signal.aborted) return;
      closing.abort();
      await client.dispose();
    },
  };

  /** The earlier result when `events` are already the stream's events right after `expected`. */
  const findRepeat = async (
    streamId: string,
    events: readonly NewEvent[],
    expected: ExpectedRevision,
  ): Promise<AppendResult | undefined> => {
    if (expected === 'any' || events.length === 0) return undefined;
    const first = expected === 'no_stream' ? 0 : expected + 1;
    const stored = await store.readStream(streamId, { fromRevision: first, maxCount: events.length });
    const same =
      stored.length === events.length && stored.every((e, i) => e.id === events[i]!.id.toLowerCase());
    if (!same) return undefined;
    const last = stored.at(-1)!;
    return { nextExpectedRevision: last.revision, position: last.position };
  };

  return store;
};

const toExpected = (expected: ExpectedRevision): AppendExpectedRevision =>
  expected === 'any' ? ANY : expected === 'no_stream' || expected < 0 ? NO_STREAM : BigInt(expected);

const toReadPosition = (position: string): ReadPosition => {
  if (position === START_POSITION) return START;
  const [commit, prepare] = decodePosition(position);
  return { commit, prepare };
};

const positionOf = (position: Position): string => encodePosition(position.commit, position.prepare);

const isSystem = (event: EsdbRecorded): boolean =>
  event.type.startsWith('$') || event.streamId.startsWith('$');

const fromAll = (resolved: AllStreamResolvedEvent): RecordedEvent | undefined => {
  const event = resolved.event;
  if (!event || isSystem(event) || !event.isJson) return undefined;
  return toRecorded(event);
};

const toRecorded = (event: EsdbRecorded): RecordedEvent =>
  upcastRecorded({
    id: event.id,
    type: event.type,
    streamId: event.streamId,
    revision: Number(event.revision),
    position: event.position ? positionOf(event.position) : START_POSITION,
    occurredAt: event.created.toISOString(),
    data: isRecord(event.data) ? event.data : {},
    metadata: (isRecord(event.metadata) ? event.metadata : {}) as EventMetadata,
  });

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);

const matches = (event: RecordedEvent, filter: EventFilter | undefined): boolean =>
  (!filter?.streamPrefixes || filter.streamPrefixes.some((p) => event.streamId.startsWith(p))) &&
  (!filter?.eventTypes || filter.eventTypes.includes(event.type));

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The server applies one filter: stream prefixes when given (usually the more selective), else an exact
 * event-type regex, else "no system events". `matches` re-checks both on the client.
 */
const serverFilter = (filter: EventFilter | undefined): Filter => {
  if (filter?.streamPrefixes && filter.streamPrefixes.length > 0) {
    return streamNameFilter({ prefixes: [...filter.streamPrefixes] });
  }
  if (filter?.eventTypes && filter.eventTypes.length > 0) {
    return eventTypeFilter({ regex: `^(${filter.eventTypes.map(escapeRegex).join('|')})$` });
  }
  return excludeSystemEvents();
};

const unavailable = (error: unknown): Error =>
  error instanceof Error && error.name === 'UnavailableError'
    ? new EventStoreUnavailableError('EventStoreDB unavailable', { cause: error })
    : error instanceof Error
      ? error
      : new Error(String(error));
