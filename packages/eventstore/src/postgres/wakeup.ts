import type { Logger } from '@chat/platform';
import type pg from 'pg';
import { PgListener } from './listener.js';
import { NOTIFY_CHANNEL } from './schema.js';

/**
 * Wakes subscribers when appends commit, over the process's LISTEN connection (a {@link PgListener},
 * shared with the key store when given one). It only shortens the wait: subscribers poll anyway, so a
 * lost notification or a dropped connection delays delivery by at most one poll interval and never
 * loses an event.
 */
export class LogWakeup {
  readonly #listener: PgListener;
  readonly #ownsListener: boolean;
  #unsubscribe: (() => void) | undefined;
  #closed = false;
  #generation = 0;
  readonly #waiters = new Set<() => void>();

  /** `listener`: a connection shared with others (its owner closes it); else one of its own. */
  constructor(config: pg.ClientConfig, logger?: Logger, listener?: PgListener) {
    this.#ownsListener = listener === undefined;
    this.#listener = listener ?? new PgListener(config, logger);
  }

  /** Changes on every notification; a subscriber compares it across a read to see if it missed one. */
  get generation(): number {
    return this.#generation;
  }

  /** Waits until a notification newer than `generation`, `timeoutMs`, or `signal` abort, whichever first. */
  async wait(generation: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    if (!this.#closed) {
      // Listens from the first wait on, not before: a process that never subscribes (the command-api)
      // must not be woken by every append's notification.
      this.#unsubscribe ??= this.#listener.subscribe(NOTIFY_CHANNEL, {
        notify: () => this.#wake(),
        // Anything committed while nobody listened is found by the next read.
        listening: () => this.#wake(),
      });
      void this.#listener.ensure();
    }
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
    this.#unsubscribe?.();
    if (this.#ownsListener) await this.#listener.close();
  }

  #wake(): void {
    this.#generation++;
    for (const waiter of [...this.#waiters]) waiter();
  }
}
