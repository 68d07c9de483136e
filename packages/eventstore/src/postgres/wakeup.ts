import type { Logger } from '@chat/platform';
import pg from 'pg';
import { NOTIFY_CHANNEL } from './schema.js';

/**
 * Wakes subscribers when appends commit, over one LISTEN connection per store. It only shortens the wait:
 * subscribers poll anyway, so a lost notification or a dropped connection delays delivery by at most one
 * poll interval and never loses an event.
 */
export class LogWakeup {
  readonly #config: pg.ClientConfig;
  readonly #logger: Logger | undefined;
  #client: pg.Client | undefined;
  #connecting: Promise<void> | undefined;
  #closed = false;
  #generation = 0;
  readonly #waiters = new Set<() => void>();

  constructor(config: pg.ClientConfig, logger?: Logger) {
    this.#config = config;
    this.#logger = logger;
  }

  /** Changes on every notification; a subscriber compares it across a read to see if it missed one. */
  get generation(): number {
    return this.#generation;
  }

  /** Waits until a notification newer than `generation`, `timeoutMs`, or `signal` abort, whichever first. */
  async wait(generation: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    this.#ensureListening();
    if (generation !== this.#generation || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake();
    await this.#connecting?.catch(() => undefined);
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  #wake(): void {
    this.#generation++;
    for (const waiter of [...this.#waiters]) waiter();
  }

  #ensureListening(): void {
    if (this.#client || this.#connecting || this.#closed) return;
    this.#connecting = this.#listen()
      .catch((error: unknown) => {
        this.#logger?.warn({ err: error }, 'event store LISTEN failed; subscribers fall back to polling');
      })
      .finally(() => {
        this.#connecting = undefined;
      });
  }

  async #listen(): Promise<void> {
    const client = new pg.Client(this.#config);
    client.on('notification', () => this.#wake());
    client.on('error', (error) => {
      this.#logger?.warn({ err: error }, 'event store LISTEN connection lost; reconnecting on next wait');
      if (this.#client === client) this.#client = undefined;
      client.end().catch(() => undefined);
    });
    await client.connect();
    await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    if (this.#closed) {
      await client.end();
      return;
    }
    this.#client = client;
    // Anything committed while we were not listening is found by the next read.
    this.#wake();
  }
}
