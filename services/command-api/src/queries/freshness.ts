import { createReadModelDb, type ReadModelDb, readCheckpoint, START_POSITION_TEXT } from '@chat/db';
import { sleep } from '@chat/platform';
import type { FastifyReply } from 'fastify';
import fp from 'fastify-plugin';

/**
 * Read-your-writes across the CQRS split: waits until a consumer's checkpoint (the projection's, the
 * notifier's) reaches a position. One poll loop per checkpoint and process serves every waiting request
 * (and runs only while some wait), so a burst of `minPosition` queries costs one checkpoint read per
 * tick, not one per request.
 */
export class ReadModelFreshness {
  #known = START_POSITION_TEXT;
  readonly #waiters = new Set<{ position: string; resolve: (ok: boolean) => void }>();
  #polling = false;

  constructor(
    /** The consumer's checkpoint now (the start of the log before its first batch). */
    private readonly readPosition: () => Promise<string>,
    private readonly pollMs = 10,
  ) {}

  /** True once the read model has applied `position`; false when `timeoutMs` passes first. */
  async waitFor(position: string, timeoutMs: number): Promise<boolean> {
    if (position <= this.#known) return true;
    await this.#refresh();
    if (position <= this.#known) return true;
    return new Promise((resolve) => {
      const waiter = {
        position,
        resolve: (ok: boolean) => {
          clearTimeout(timer);
          this.#waiters.delete(waiter);
          resolve(ok);
        },
      };
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs);
      this.#waiters.add(waiter);
      void this.#poll();
    });
  }

  async #refresh(): Promise<void> {
    const checkpoint = await this.readPosition();
    if (checkpoint > this.#known) this.#known = checkpoint;
  }

  async #poll(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      while (this.#waiters.size > 0) {
        await sleep(this.pollMs);
        // A failed read is retried on the next tick; the waiter's own timeout bounds the wait.
        await this.#refresh().catch(() => {});
        for (const w of this.#waiters) if (w.position <= this.#known) w.resolve(true);
      }
    } finally {
      this.#polling = false;
    }
  }
}

/**
 * Read-your-writes for a query route: waits for `minPosition` (when given); when the read model does not
 * reach it within `waitMs` (API.md: at most 2 s), the answer goes out anyway, marked
 * `X-Read-Model-Stale: true`.
 */
export const positionAwaiter =
  (freshness: ReadModelFreshness, waitMs: number) =>
  async (minPosition: string | undefined, reply: FastifyReply): Promise<void> => {
    if (minPosition === undefined) return;
    if (!(await freshness.waitFor(minPosition, waitMs))) reply.header('x-read-model-stale', 'true');
  };

/** What every query route reads through: the read models, and the `minPosition` wait. */
export type ReadModelAccess = {
  db: ReadModelDb;
  /** `positionAwaiter` on the projection's checkpoint. */
  awaitPosition: (minPosition: string | undefined, reply: FastifyReply) => Promise<void>;
};

declare module 'fastify' {
  interface FastifyInstance {
    readModel: ReadModelAccess;
  }
}

/** One `ReadModelFreshness` (one checkpoint poll loop) for every query route group of the process. */
export const readModelPlugin = fp<{ minPositionWaitMs?: number }>(
  async (app, options) => {
    const db = createReadModelDb(app.pool);
    const freshness = new ReadModelFreshness(() => readCheckpoint(db));
    app.decorate('readModel', {
      db,
      awaitPosition: positionAwaiter(freshness, options.minPositionWaitMs ?? 2000),
    } satisfies ReadModelAccess);
  },
  { name: 'chat-read-model', dependencies: ['chat-infrastructure'] },
);
