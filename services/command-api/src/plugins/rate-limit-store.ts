import type { Logger } from '@chat/platform';
import type pg from 'pg';

/** What a counter says after a hit: hits in the current window (this one included) and ms left in it. */
export type WindowCount = { current: number; ttl: number };

type Waiter = { resolve: (count: WindowCount) => void; reject: (err: unknown) => void };

const UNDEFINED_TABLE = '42P01';
const UNDEFINED_SCHEMA = '3F000';
const SWEEP_EVERY_MS = 60_000;

/**
 * Fixed-window hit counters shared by every command-api instance, so a user's limit holds however many
 * instances (and NATS queue-group members) their requests are spread over.
 *
 * Postgres rather than NATS KV: one statement counts many hits at once. Hits arriving while a statement
 * is in flight wait and go together in the next one (group commit, as the event store does), so under
 * load the cost per request is a fraction of a round trip, where a KV counter costs a read and a
 * compare-and-set per request. The table is UNLOGGED: counters need no durability (a crash only resets
 * current windows) and skip the WAL. It creates itself on first use: it holds nothing worth migrating.
 */
export class PostgresRateLimitStore {
  #pending = new Map<string, { windowMs: number; waiters: Waiter[] }>();
  #running = false;
  #sweepAt = 0;

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {}

  /** Counts one hit on `key` in its current window (a new window of `windowMs` when the last one ended). */
  hit(key: string, windowMs: number): Promise<WindowCount> {
    return new Promise((resolve, reject) => {
      const entry = this.#pending.get(key);
      if (entry) entry.waiters.push({ resolve, reject });
      else this.#pending.set(key, { windowMs, waiters: [{ resolve, reject }] });
      if (!this.#running) void this.#run();
    });
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#pending.size > 0) {
        const batch = this.#pending;
        this.#pending = new Map();
        await this.#count(batch);
        if (Date.now() >= this.#sweepAt) await this.#sweep();
      }
    } finally {
      this.#running = false;
    }
  }

  async #count(batch: Map<string, { windowMs: number; waiters: Waiter[] }>): Promise<void> {
    // Sorted, so two instances' statements lock shared keys in the same order and cannot deadlock.
    const keys = [...batch.keys()].sort();
    const entries = keys.map((k) => batch.get(k)!);
    try {
      const rows = await this.#upsert(
        keys,
        entries.map((e) => e.waiters.length),
        entries.map((e) => e.windowMs),
      );
      for (const row of rows) {
        const entry = batch.get(row.key);
        if (!entry) continue;
        // The batch's hits on one key were added at once: hand them out in arrival order.
        const first = row.hits - entry.waiters.length + 1;
        entry.waiters.forEach((w, i) => {
          w.resolve({ current: first + i, ttl: Math.max(0, row.ttl_ms) });
        });
      }
    } catch (err) {
      for (const entry of entries) for (const w of entry.waiters) w.reject(err);
    }
  }

  async #upsert(keys: string[], hits: number[], windows: number[]) {
    const run = () =>
      this.pool.query<{ key: string; hits: number; ttl_ms: number }>(
        `INSERT INTO rate_limit.windows AS w (key, hits, ends_at)
         SELECT key, hits, now() + window_ms * interval '1 millisecond'
           FROM unnest($1::text[], $2::int[], $3::int[]) AS t(key, hits, window_ms)
         ON CONFLICT (key) DO UPDATE SET
           hits = CASE WHEN w.ends_at <= now() THEN excluded.hits ELSE w.hits + excluded.hits END,
           ends_at = CASE WHEN w.ends_at <= now() THEN excluded.ends_at ELSE w.ends_at END
         RETURNING key, hits, ceil(extract(epoch FROM ends_at - now()) * 1000)::int AS ttl_ms`,
        [keys, hits, windows],
      );
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

  /** Ended windows carry no information: drop them now and then so idle users cost no rows. */
  async #sweep(): Promise<void> {
    this.#sweepAt = Date.now() + SWEEP_EVERY_MS;
    await this.pool
      .query('DELETE FROM rate_limit.windows WHERE ends_at < now()')
      .catch((err: unknown) => this.logger.warn({ err }, 'could not sweep rate-limit windows'));
  }
}
