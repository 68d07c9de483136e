import type { Logger } from '@chat/platform';
import type pg from 'pg';

/** What a counter says after a hit: hits in the current window (this one included) and ms left in it. */
export type WindowCount = { current: number; ttl: number };

type Waiter = { resolve: (count: WindowCount) => void; reject: (err: unknown) => void };

/** What this instance knows of one key's current window. */
type KeyView = {
  /** The shared count as of this instance's last statement for the key (its own flushed hits included). */
  shared: number;
  /** Hits counted here and not yet added to the shared count (in flight or waiting for the next flush). */
  unsynced: number;
  /** When the window ends, on this process's clock (`performance.now()`). */
  endsAt: number;
  /** When a statement last told the shared count: hits are answered from it for one flush interval. */
  syncedAt: number;
  /** No statement has answered for this window yet: hits after the first wait for one. */
  provisional: boolean;
  waiters: Waiter[];
};

const UNDEFINED_TABLE = '42P01';
const UNDEFINED_SCHEMA = '3F000';
const SWEEP_EVERY_MS = 60_000;
/** Statements that only carry hits already answered start at most this often. */
export const RATE_LIMIT_FLUSH_INTERVAL_MS = 25;

/**
 * Fixed-window hit counters shared by every command-api instance, so a user's limit holds however many
 * instances (and NATS queue-group members) their requests are spread over.
 *
 * A hit is answered from what this instance knows, without waiting for Postgres, when that is recent:
 * the shared count as told by a statement at most one flush interval ago, plus the hits this instance
 * counted since. Hits are added to the shared table in the background, many keys per statement, at most
 * one statement per RATE_LIMIT_FLUSH_INTERVAL_MS while no hit waits (one round trip per request was
 * most of the limiter's cost). The first hit of a key in a window is answered at once as the window's
 * first; a later hit on an older view waits for the statement that tells the shared count (sent at once,
 * with the other hits of its tick), so a burst or a slow trickle is counted against the shared budget.
 *
 * Tolerance, compared with one exact shared counter: an instance lets through at most one request per
 * key and window before it has heard the shared count, and sees other instances' requests at most one
 * flush interval (plus a round trip) late. With one instance the count is exact after the first hit.
 *
 * Postgres rather than NATS KV: one statement counts many keys at once. The table is UNLOGGED: counters
 * need no durability (a crash only resets current windows) and skip the WAL. It creates itself on first
 * use: it holds nothing worth migrating.
 */
export class PostgresRateLimitStore {
  readonly #views = new Map<string, KeyView>();
  /** Keys with unsynced hits or waiters, and their window length. */
  #dirty = new Map<string, number>();
  #running = false;
  #timer: NodeJS.Timeout | null = null;
  /** Hits waiting for a statement to answer: while there are any, a flush starts without delay. */
  #waiting = 0;
  #lastStart = Number.NEGATIVE_INFINITY;
  #sweepAt = 0;
  #idle: Array<() => void> = [];

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
    private readonly flushIntervalMs = RATE_LIMIT_FLUSH_INTERVAL_MS,
  ) {}

  /** Counts one hit on `key` in its current window (a new window of `windowMs` when the last one ended). */
  hit(key: string, windowMs: number): Promise<WindowCount> {
    const now = performance.now();
    let view = this.#views.get(key);
    if (view && view.endsAt <= now && view.waiters.length === 0) view = undefined;
    if (!view) {
      view = {
        shared: 0,
        unsynced: 0,
        endsAt: now + windowMs,
        syncedAt: now,
        provisional: true,
        waiters: [],
      };
      this.#views.set(key, view);
    } else if (view.provisional ? view.unsynced > 0 : now - view.syncedAt > this.flushIntervalMs) {
      const waiting = view;
      return new Promise((resolve, reject) => {
        waiting.waiters.push({ resolve, reject });
        this.#waiting++;
        this.#schedule(key, windowMs);
      });
    }
    view.unsynced++;
    this.#schedule(key, windowMs);
    return Promise.resolve({ current: view.shared + view.unsynced, ttl: Math.max(0, view.endsAt - now) });
  }

  /** Resolves when every hit counted so far is in the shared table (tests, shutdown). */
  drained(): Promise<void> {
    if (!this.#running && this.#dirty.size === 0) return Promise.resolve();
    const idle = new Promise<void>((resolve) => this.#idle.push(resolve));
    this.#kick();
    return idle;
  }

  #schedule(key: string, windowMs: number): void {
    this.#dirty.set(key, windowMs);
    this.#kick();
  }

  /** Starts a flush now when a hit (or `drained`) waits for one or the interval has passed, else later. */
  #kick(): void {
    if (this.#running || this.#dirty.size === 0) return;
    const urgent = this.#waiting > 0 || this.#idle.length > 0;
    const wait = urgent ? 0 : this.#lastStart + this.flushIntervalMs - performance.now();
    if (wait > 0) {
      this.#timer ??= setTimeout(() => {
        this.#timer = null;
        this.#kick();
      }, wait).unref();
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#running = true;
    // setImmediate: the hits of this tick go in the same statement.
    setImmediate(() => void this.#flush());
  }

  async #flush(): Promise<void> {
    const batch = this.#dirty;
    this.#dirty = new Map();
    this.#lastStart = performance.now();
    try {
      await this.#count(batch);
      if (Date.now() >= this.#sweepAt) await this.#sweep();
    } finally {
      this.#running = false;
      this.#kick();
      if (!this.#running && this.#dirty.size === 0) for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #count(batch: Map<string, number>): Promise<void> {
    // Sorted, so two instances' statements lock shared keys in the same order and cannot deadlock.
    const keys = [...batch.keys()].sort();
    const views = keys.map((k) => this.#views.get(k));
    const sent = views.map((v) => v?.unsynced ?? 0);
    try {
      const rows = await this.#upsert(
        keys,
        sent,
        keys.map((k) => batch.get(k)!),
      );
      const now = performance.now();
      const byKey = new Map(rows.map((r) => [r.key, r]));
      keys.forEach((key, i) => {
        const view = views[i];
        const row = byKey.get(key);
        // A view replaced meanwhile (its window ended) has its own hits to send.
        if (!view || !row || this.#views.get(key) !== view) return;
        view.unsynced -= sent[i]!;
        view.shared = row.hits;
        view.endsAt = now + Math.max(0, row.ttl_ms);
        view.syncedAt = now;
        view.provisional = false;
        // The hits that waited for the shared count, in arrival order; they go with the next flush.
        for (const w of view.waiters.splice(0)) {
          this.#waiting--;
          view.unsynced++;
          w.resolve({ current: view.shared + view.unsynced, ttl: Math.max(0, row.ttl_ms) });
        }
        if (view.unsynced > 0) this.#dirty.set(key, batch.get(key)!);
      });
    } catch (err) {
      // The hits sent are not counted (let through, as when the store cannot answer); waiters fail alike.
      keys.forEach((key, i) => {
        const view = views[i];
        if (!view || this.#views.get(key) !== view) return;
        view.unsynced -= sent[i]!;
        for (const w of view.waiters.splice(0)) {
          this.#waiting--;
          w.reject(err);
        }
      });
      this.logger.warn({ err }, 'could not count rate-limit hits');
    }
  }

  async #upsert(keys: string[], hits: number[], windows: number[]) {
    const run = () =>
      // Named: each pool connection parses and plans it once, not on every flush.
      this.pool.query<{ key: string; hits: number; ttl_ms: number }>({
        name: 'rate_limit_hits',
        text: `INSERT INTO rate_limit.windows AS w (key, hits, ends_at)
         SELECT key, hits, now() + window_ms * interval '1 millisecond'
           FROM unnest($1::text[], $2::int[], $3::int[]) AS t(key, hits, window_ms)
         ON CONFLICT (key) DO UPDATE SET
           hits = CASE WHEN w.ends_at <= now() THEN excluded.hits ELSE w.hits + excluded.hits END,
           ends_at = CASE WHEN w.ends_at <= now() THEN excluded.ends_at ELSE w.ends_at END
         RETURNING key, hits, ceil(extract(epoch FROM ends_at - now()) * 1000)::int AS ttl_ms`,
        values: [keys, hits, windows],
      });
    try {
      return (await run()).rows;
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code !== UNDEFINED_TABLE && code !== UNDEFINED_SCHEMA) throw err;
      await this.#createTable();
      return (await run()).rows;
    }
  }

  async #createTable(): Promise<void> {
    this.logger.info('creating rate_limit.windows');
    try {
      await this.pool.query('CREATE SCHEMA IF NOT EXISTS rate_limit');
      await this.pool.query(
        `CREATE UNLOGGED TABLE IF NOT EXISTS rate_limit.windows (
           key text PRIMARY KEY,
           hits integer NOT NULL,
           ends_at timestamptz NOT NULL
         )`,
      );
    } catch (err) {
      // Another instance created it at the same moment ("IF NOT EXISTS" is not atomic): it exists now.
      this.logger.debug({ err }, 'rate_limit.windows created concurrently');
    }
  }

  /** Ended windows carry no information: drop them now and then so idle users cost no rows or memory. */
  async #sweep(): Promise<void> {
    this.#sweepAt = Date.now() + SWEEP_EVERY_MS;
    const now = performance.now();
    for (const [key, view] of this.#views) {
      if (view.endsAt <= now && view.unsynced === 0 && view.waiters.length === 0) this.#views.delete(key);
    }
    await this.pool
      .query('DELETE FROM rate_limit.windows WHERE ends_at < now()')
      .catch((err: unknown) => this.logger.warn({ err }, 'could not sweep rate-limit windows'));
  }
}
