import { measureMemory } from 'node:vm';
import type { Logger } from '@chat/platform';

export type MemoryReducerOptions = {
  /** Connects since the last collection that make a burst worth collecting after; 0 disables. */
  minConnects: number;
  /** How long connects must have stopped before collecting (a burst is over). */
  quietMs: number;
  /** At most one collection per this many ms. */
  minIntervalMs: number;
  /** Runs a full garbage collection; the default asks V8 for an eager memory measurement. */
  collect?: () => Promise<unknown>;
};

/** During a long burst, a collection every this many times `minConnects`. */
const LONG_BURST = 4;

/**
 * One full garbage collection after a connect burst has ended. A burst allocates far more short-lived
 * objects than the sockets keep (token parsing, read-model batches, presence records, upgrade
 * closures); the young-generation collector promotes part of them to the old generation, where they
 * stay until V8's next major collection. An idle gateway allocates too little to trigger one, so after
 * a reconnect storm it would hold that garbage — more than the sockets themselves need — for hours.
 * Browsers run V8's memory reducer when a tab goes idle; Node has none, so the gateway asks for one
 * collection once connects have calmed down (and now and then during a long burst).
 * `vm.measureMemory` with eager execution is the public API that runs a full collection without
 * `--expose-gc` (Node flags it experimental and warns once).
 */
export class MemoryReducer {
  #connects = 0;
  #lastConnectAt = 0;
  #lastRunAt = Number.NEGATIVE_INFINITY;
  #running = false;

  constructor(
    private readonly options: MemoryReducerOptions,
    private readonly logger: Logger,
  ) {}

  noteConnect(now: number): void {
    this.#connects++;
    this.#lastConnectAt = now;
  }

  /** Called periodically (the gateway's sweep): collects when a burst is over. */
  tick(now: number): void {
    const o = this.options;
    if (o.minConnects === 0 || this.#running || this.#connects < o.minConnects) return;
    if (now - this.#lastRunAt < o.minIntervalMs) return;
    // When the burst is over, or every few bursts' worth during a long one, so that the old generation
    // does not grow far past what the sockets need before the first collection.
    const burstOver = now - this.#lastConnectAt >= o.quietMs;
    if (!burstOver && this.#connects < o.minConnects * LONG_BURST) return;
    this.#running = true;
    this.#lastRunAt = now;
    const connects = this.#connects;
    this.#connects = 0;
    const started = performance.now();
    const collect = o.collect ?? (() => measureMemory({ mode: 'summary', execution: 'eager' }));
    collect().then(
      () => {
        this.#running = false;
        this.logger.debug(
          { connects, ms: Math.round(performance.now() - started) },
          'collected garbage after a connect burst',
        );
      },
      (err: unknown) => {
        this.#running = false;
        this.logger.warn({ err }, 'garbage collection after a connect burst failed');
      },
    );
  }
}
