import {
  delegatingStore,
  type EventFilter,
  type EventStore,
  type RecordedEvent,
  START_POSITION,
  type SubscribeOptions,
} from '@chat/eventstore';

export type SharedLogOptions = {
  /**
   * The filters of the subscriptions to share (each consumer's `filter`, `undefined` for a consumer that
   * reads everything). The one read takes their union; a subscription with another filter reads alone.
   */
  filters: readonly (EventFilter | undefined)[];
  /** Largest page of the shared read (default 2000). */
  batchSize?: number;
  /** Events kept for a subscriber that is behind the others (default 4 pages); past that it reads alone. */
  bufferMax?: number;
};

/** What a shared log did, for tests and metrics. */
export type SharedLogStats = {
  /** Subscriptions the shared read served (from its start or after catching up). */
  sharedReads: number;
  /** Pages a subscriber behind the shared window read on its own (`readAll`). */
  ownPages: number;
};

/**
 * An event store whose catch-up subscriptions share one read of the log: the consumers of one process
 * (the projection and the relay) tail the same log, and each used to read, decrypt and validate every
 * page itself. Here one subscription of the inner store (the union of the declared filters) fills a
 * window of recent events, and every subscriber takes its events from it with its own filter, cursor
 * and batch size. The guarantee of `subscribeToAll` holds per subscriber — every event after its
 * `fromPosition` that passes its filter, in log order, none skipped:
 *
 * - The window holds every event of the union filter in (`start`, `end`], in log order (it is what one
 *   subscription of the inner store yielded). A subscriber whose cursor is in it gets the events after
 *   its cursor that pass its filter; past the last one, its cursor moves to `end`.
 * - A subscriber behind the window (it started or resumed late, or fell more than `bufferMax` events
 *   behind the fastest, whose waits drive the read) reads pages of its own with `readAll` until one is
 *   not full: it then has every event of its filter up to the log's head at that read, and the window's
 *   `start`, taken before the read, is an event that read could see (the store's log order: nothing
 *   commits later below a visible event), so its cursor moves to `start` and the window serves it.
 *
 * Events handed out are shared between subscribers: consumers must not change them. An error of the
 * shared read ends every subscription that waits on it (each consumer resumes from its checkpoint, as
 * after any read error); the next subscription starts a new read. Other methods are the inner store's.
 */
export const shareLog = (
  inner: EventStore,
  options: SharedLogOptions,
): EventStore & { readonly stats: SharedLogStats } => {
  const declared = new Set(options.filters.map(filterKey));
  const union = unionOf(options.filters);
  const batchSize = options.batchSize ?? 2000;
  const bufferMax = Math.max(options.bufferMax ?? 4 * batchSize, batchSize);
  const stats: SharedLogStats = { sharedReads: 0, ownPages: 0 };
  let current: Window | undefined;

  const windowAt = (position: string): Window => {
    if (current && !current.done) return current;
    current = new Window(inner, union, position, batchSize, bufferMax, (w) => {
      if (current === w) current = undefined;
    });
    return current;
  };

  async function* subscribe(subscribeOptions: SubscribeOptions): AsyncGenerator<RecordedEvent[]> {
    const { signal, filter } = subscribeOptions;
    const size = subscribeOptions.batchSize ?? 1000;
    const matches = matcher(filter);
    const reader: Reader = { cursor: subscribeOptions.fromPosition ?? START_POSITION };
    let window: Window | undefined;
    try {
      while (!signal?.aborted) {
        if (!window || window.done) {
          window?.detach(reader);
          window = windowAt(reader.cursor);
          window.attach(reader);
          stats.sharedReads++;
        }
        if (reader.cursor < window.start) {
          // Behind the window: a page of its own. A page that is not full saw everything up to the head,
          // which is past the window's start as it was before the read.
          const start = window.start;
          const page = await inner.readAll({
            fromPosition: reader.cursor,
            maxCount: size,
            ...(filter ? { filter } : {}),
          });
          stats.ownPages++;
          const last = page.at(-1)?.position ?? reader.cursor;
          reader.cursor = page.length < size && start > last ? start : last;
          if (page.length > 0) yield page;
          continue;
        }
        const taken = window.take(reader.cursor, matches, size);
        reader.cursor = taken.to;
        if (taken.events.length > 0) {
          yield taken.events;
          continue;
        }
        await window.more(signal);
      }
    } finally {
      window?.detach(reader);
    }
  }

  return delegatingStore(inner, {
    stats,
    subscribeToAll: (subscribeOptions: SubscribeOptions = {}) =>
      declared.has(filterKey(subscribeOptions.filter))
        ? subscribe(subscribeOptions)
        : inner.subscribeToAll(subscribeOptions),
  });
};

type Reader = { cursor: string };

/** One subscription of the inner store and the events it yielded that a reader may still take. */
class Window {
  /** Exclusive: the window holds every event of the union filter in (start, end]. */
  start: string;
  end: string;
  /** Set once the read failed or ended, or no reader is left: readers move to a new window. */
  done = false;
  readonly #events: RecordedEvent[] = [];
  /** Index of the first event still held in `#events` (trimmed lazily). */
  #head = 0;
  readonly #readers = new Set<Reader>();
  readonly #stop = new AbortController();
  readonly #iterator: AsyncIterator<RecordedEvent[]>;
  #pulling: Promise<void> | undefined;
  #failure: unknown;

  constructor(
    inner: EventStore,
    filter: EventFilter | undefined,
    from: string,
    batchSize: number,
    private readonly bufferMax: number,
    private readonly onDone: (w: Window) => void,
  ) {
    this.start = from;
    this.end = from;
    this.#iterator = inner
      .subscribeToAll({
        fromPosition: from,
        batchSize,
        signal: this.#stop.signal,
        ...(filter ? { filter } : {}),
      })
      [Symbol.asyncIterator]();
  }

  attach(reader: Reader): void {
    this.#readers.add(reader);
  }

  detach(reader: Reader): void {
    this.#readers.delete(reader);
    if (this.#readers.size === 0) this.#finish();
  }

  /** The events after `cursor` that pass `matches`, at most `max`, and the cursor after them. */
  take(
    cursor: string,
    matches: (e: RecordedEvent) => boolean,
    max: number,
  ): { events: RecordedEvent[]; to: string } {
    const events: RecordedEvent[] = [];
    const all = this.#events;
    for (let i = this.#firstAfter(cursor); i < all.length; i++) {
      const event = all[i] as RecordedEvent;
      if (!matches(event)) continue;
      events.push(event);
      if (events.length >= max) return { events, to: event.position };
    }
    return { events, to: this.end > cursor ? this.end : cursor };
  }

  /** Waits for the next page of the read (started by the first reader that needs it), or `signal`. */
  async more(signal: AbortSignal | undefined): Promise<void> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.done) return;
    this.#pulling ??= this.#pull().finally(() => {
      this.#pulling = undefined;
    });
    const pulled = this.#pulling;
    if (!signal) return pulled;
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        pulled,
        new Promise<void>((resolve) => {
          onAbort = resolve;
          signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  async #pull(): Promise<void> {
    let next: IteratorResult<RecordedEvent[]>;
    try {
      next = await this.#iterator.next();
    } catch (err) {
      this.#failure = err;
      this.#finish();
      throw err;
    }
    if (next.done) {
      this.#finish();
      return;
    }
    const page = next.value;
    if (page.length === 0) return;
    this.#events.push(...page);
    this.end = (page.at(-1) as RecordedEvent).position;
    this.#trim();
  }

  /** Drops what every reader has passed, and what is more than `bufferMax` behind the newest event. */
  #trim(): void {
    let slowest: string | undefined;
    for (const r of this.#readers) if (slowest === undefined || r.cursor < slowest) slowest = r.cursor;
    let head = slowest === undefined ? this.#events.length : this.#firstAfter(slowest);
    head = Math.max(head, this.#events.length - this.bufferMax);
    if (head <= this.#head) return;
    this.start = (this.#events[head - 1] as RecordedEvent).position;
    this.#head = head;
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** Index of the first held event after `cursor` (binary search: positions ascend). */
  #firstAfter(cursor: string): number {
    let lo = this.#head;
    let hi = this.#events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#events[mid] as RecordedEvent).position <= cursor) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #finish(): void {
    if (this.done) return;
    this.done = true;
    this.#stop.abort();
    // The pending `next()` resolves once the inner subscription sees the abort; nothing waits for it.
    this.#pulling?.catch(() => {});
    void this.#iterator.return?.().catch(() => {});
    this.onDone(this);
  }
}

const filterKey = (filter: EventFilter | undefined): string =>
  JSON.stringify([filter?.streamPrefixes ?? null, filter?.eventTypes ?? null]);

/** A filter every declared filter's events pass (none when one of them reads everything). */
const unionOf = (filters: readonly (EventFilter | undefined)[]): EventFilter | undefined => {
  if (filters.length === 0) return undefined;
  let prefixes: Set<string> | undefined = new Set();
  let types: Set<string> | undefined = new Set();
  for (const f of filters) {
    if (prefixes) {
      if (f?.streamPrefixes) for (const p of f.streamPrefixes) prefixes.add(p);
      else prefixes = undefined;
    }
    if (types) {
      if (f?.eventTypes) for (const t of f.eventTypes) types.add(t);
      else types = undefined;
    }
  }
  if (!prefixes && !types) return undefined;
  return {
    ...(prefixes ? { streamPrefixes: [...prefixes] } : {}),
    ...(types ? { eventTypes: [...types] } : {}),
  };
};

/** The store's server-side filter, applied to an event in memory. */
const matcher = (filter: EventFilter | undefined): ((e: RecordedEvent) => boolean) => {
  const prefixes = filter?.streamPrefixes;
  const types = filter?.eventTypes ? new Set(filter.eventTypes) : undefined;
  if (!prefixes && !types) return () => true;
  return (e) =>
    (!prefixes || prefixes.some((p) => e.streamId.startsWith(p))) && (!types || types.has(e.type));
};
