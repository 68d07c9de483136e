import type { Logger } from '@chat/platform';
import pg from 'pg';

/** What a subscriber of one channel hears. */
export type ChannelHandlers = {
  /** A notification on the channel. */
  notify?: (payload: string) => void;
  /** The connection listens (again): what was notified while it did not is lost. */
  listening?: () => void;
  /** The connection was lost, or could not be made: notifications may be missed from now on. */
  lost?: (error: unknown) => void;
};

const CHANNEL = /^[a-z_][a-z0-9_]*$/;

/**
 * One LISTEN connection for all the channels a process listens on (the log's wake-up, the key store's
 * erasures). PostgreSQL wakes every backend that listens in a database on every NOTIFY there, whatever
 * its channel: each LISTEN connection of its own was one more backend woken on every append.
 *
 * It connects on `ensure` (at most one attempt per `retryMs`) with every subscribed channel, and tells
 * each subscriber when it listens and when it lost the connection; it never reconnects by itself.
 */
export class PgListener {
  readonly #config: pg.ClientConfig;
  readonly #logger: Logger | undefined;
  readonly #retryMs: number;
  readonly #channels = new Map<string, Set<ChannelHandlers>>();
  /** The channels the current connection listens on. */
  readonly #listened = new Set<string>();
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  #closed = false;

  constructor(config: pg.ClientConfig, logger?: Logger, retryMs = 1000) {
    this.#config = config;
    this.#logger = logger;
    this.#retryMs = retryMs;
  }

  /** The database it listens in, when configured by connection string: whom it can be shared with. */
  get connectionString(): string | undefined {
    return this.#config.connectionString;
  }

  /**
   * Adds `handlers` to `channel` (an unquoted identifier). A connection made from now on listens on it;
   * one that is up starts to (until that is done, `ensure` waits for it). Returns the removal.
   */
  subscribe(channel: string, handlers: ChannelHandlers): () => void {
    if (!CHANNEL.test(channel)) throw new RangeError(`not a channel name: ${channel}`);
    let subscribers = this.#channels.get(channel);
    if (!subscribers) {
      subscribers = new Set();
      this.#channels.set(channel, subscribers);
      // A connection being made takes it up before it is done (`#listen` loops until none is left).
      const client = this.#client;
      if (client && !this.#connecting) this.#track(this.#listen(client));
    }
    subscribers.add(handlers);
    return () => {
      subscribers.delete(handlers);
      if (subscribers.size > 0 || this.#channels.get(channel) !== subscribers) return;
      this.#channels.delete(channel);
      if (this.#listened.delete(channel)) this.#client?.query(`UNLISTEN ${channel}`).catch(() => undefined);
    };
  }

  /**
   * Connects unless a connection is up, being made, or was tried less than `retryMs` ago. Resolves once
   * the connection listens or the attempt failed (subscribers heard `lost`); never rejects.
   */
  ensure(): Promise<void> {
    if (this.#connecting) return this.#connecting;
    if (this.#client || this.#closed || Date.now() - this.#lastAttempt < this.#retryMs) {
      return Promise.resolve();
    }
    this.#lastAttempt = Date.now();
    const client = new pg.Client(this.#config);
    this.#client = client;
    this.#listened.clear();
    client.on('error', (error) => this.#lose(client, error));
    client.on('end', () => this.#lose(client, new Error('LISTEN connection ended')));
    client.on('notification', (message) => {
      for (const handlers of this.#channels.get(message.channel) ?? [])
        handlers.notify?.(message.payload ?? '');
    });
    return this.#track(
      client.connect().then(
        () => this.#listen(client),
        (error: unknown) => this.#lose(client, error),
      ),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#connecting;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  /** Makes `work` the attempt `ensure` waits for, until it settles. */
  #track(work: Promise<void>): Promise<void> {
    const attempt: Promise<void> = work.finally(() => {
      if (this.#connecting === attempt) this.#connecting = undefined;
    });
    this.#connecting = attempt;
    return attempt;
  }

  /** LISTENs on every subscribed channel the connection does not listen on yet, then tells their subscribers. */
  async #listen(client: pg.Client): Promise<void> {
    for (;;) {
      const channels = [...this.#channels.keys()].filter((c) => !this.#listened.has(c));
      if (channels.length === 0) return;
      try {
        await client.query(channels.map((c) => `LISTEN ${c}`).join('; '));
      } catch (error) {
        this.#lose(client, error);
        return;
      }
      if (this.#client !== client) return;
      if (this.#closed) {
        this.#client = undefined;
        await client.end().catch(() => undefined);
        return;
      }
      for (const channel of channels) {
        this.#listened.add(channel);
        for (const handlers of this.#channels.get(channel) ?? []) handlers.listening?.();
      }
    }
  }

  #lose(client: pg.Client, error: unknown): void {
    if (this.#client !== client) return;
    this.#client = undefined;
    this.#listened.clear();
    client.end().catch(() => undefined);
    if (this.#closed) return;
    this.#logger?.warn({ err: error }, 'Postgres LISTEN connection lost; reconnecting on next use');
    for (const subscribers of this.#channels.values()) {
      for (const handlers of subscribers) handlers.lost?.(error);
    }
  }
}
