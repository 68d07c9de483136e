import { randomUUID } from 'node:crypto';
import type { EventStore, KeyedPage, NewEvent, RecordedEvent, SubscribeOptions } from '../src/index.js';

// The tables of `migrateDataKeys` (@chat/db, which this package must not depend on), as they are.
export const KEY_TABLES = `
  CREATE SCHEMA keys;
  CREATE TABLE keys.user_data_keys (
    user_id text COLLATE "C" PRIMARY KEY, kid uuid NOT NULL UNIQUE, wrapped bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
  CREATE TABLE keys.erased_users (
    user_id text COLLATE "C" PRIMARY KEY, kid uuid UNIQUE, erased_at timestamptz NOT NULL DEFAULT now());`;

export const newEvent = (type = 'TestHappened', data: Record<string, unknown> = {}): NewEvent => ({
  id: randomUUID(),
  type,
  data,
  metadata: { userId: 'user-1', correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
});

export const newEvents = (n: number, type = 'TestHappened'): NewEvent[] =>
  Array.from({ length: n }, (_, i) => newEvent(type, { i }));

/** A category unique to one test, so tests can share a store (and EventStoreDB a log) without overlap. */
export const uniqueCategory = (label: string): string =>
  `t${randomUUID().replaceAll('-', '').slice(0, 12)}${label}`;

/** A subscription of `store` from its current head to one category, collecting into `received`. */
export const subscribeFromHead = async (store: EventStore, category: string) => {
  const received: RecordedEvent[] = [];
  const controller = new AbortController();
  const from = await store.headPosition();
  const done = (async () => {
    for await (const batch of store.subscribeToAll({
      fromPosition: from,
      signal: controller.signal,
      filter: { streamPrefixes: [category] },
    })) {
      received.push(...batch);
    }
  })();
  return {
    received,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
};

/**
 * The pages `store.subscribeToAllWithKeys` (Postgres) reads after `from` in one category, taken one
 * `next()` at a time (the read starts when `next` is called); `stop` ends the subscription.
 */
export const keyedPages = (store: EventStore, from: string, category: string, batchSize?: number) => {
  if (!store.subscribeToAllWithKeys) throw new Error('this store reads no pages with their keys');
  const iterator = store
    .subscribeToAllWithKeys({
      fromPosition: from,
      filter: { streamPrefixes: [category] },
      ...(batchSize === undefined ? {} : { batchSize }),
    })
    [Symbol.asyncIterator]();
  return {
    next: async (): Promise<KeyedPage> => (await iterator.next()).value as KeyedPage,
    stop: async (): Promise<void> => {
      await iterator.return?.();
    },
  };
};

/**
 * Subscribes and collects events until `until` says stop (or the timeout fails the test). Returns the
 * collected events and the batches' sizes.
 */
export const collect = async (
  store: EventStore,
  options: SubscribeOptions,
  until: (events: RecordedEvent[]) => boolean,
  timeoutMs = 20_000,
): Promise<RecordedEvent[]> => {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error('collect timed out')), timeoutMs);
  const events: RecordedEvent[] = [];
  try {
    const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
    for await (const batch of store.subscribeToAll({ ...options, signal })) {
      events.push(...batch);
      if (until(events)) break;
    }
  } finally {
    clearTimeout(timer);
  }
  if (!until(events)) {
    throw new Error(`subscription ended after ${events.length} events without meeting its condition`);
  }
  return events;
};

/**
 * Waits until the log shows everything up to `position`. The Postgres log does as soon as the append
 * has returned; the wait keeps the contract suite from depending on that.
 */
export const untilVisible = async (
  store: EventStore,
  position: string,
  timeoutMs = 20_000,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while ((await store.headPosition()) < position) {
    if (Date.now() > deadline) throw new Error(`position ${position} not visible after ${timeoutMs} ms`);
    await sleep(20);
  }
};

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
