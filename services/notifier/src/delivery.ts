import { randomUUID } from 'node:crypto';
import {
  type ClaimedDelivery,
  claimDeliveries,
  markDelivered,
  markFailed,
  nextDueAt,
  pruneDelivered,
} from '@chat/notifications';
import type { Logger } from '@chat/platform';
import { sleep } from '@chat/platform';
import type { Pool } from 'pg';
import { retryDelayMs } from './domain/backoff.js';
import type { NotifierMetrics } from './metrics.js';
import {
  signWebhook,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from './signature.js';

export type WebhookOptions = {
  url: string;
  /** HMAC keys; every delivery carries one signature per key (secret rotation). */
  keys: readonly Buffer[];
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  timeoutMs: number;
  /** How long a claimed delivery stays invisible to other workers before it falls due again. */
  leaseMs: number;
  /** Deliveries in flight at once per worker. */
  concurrency: number;
  /** Longest idle sleep; new deliveries from this process wake the worker earlier. */
  pollMs: number;
  /** Delivered rows are kept this long (for `chatctl stats` and audits), then deleted. */
  retainDeliveredSeconds: number;
};

const PRUNE_EVERY_MS = 60_000;

/**
 * Delivers the webhook outbox: claims due rows, POSTs them, records the outcome. Nothing is lost on a
 * crash because the row is only finished after the receiver answered; at worst a receiver sees a
 * delivery twice, and `webhook-id` lets it drop the repeat. Every instance may run one worker.
 */
export class WebhookDelivery {
  readonly #options: WebhookOptions;
  readonly #pool: Pool;
  readonly #logger: Logger;
  readonly #metrics: NotifierMetrics;
  readonly #random: () => number;
  #wake: (() => void) | undefined;

  constructor(deps: {
    pool: Pool;
    logger: Logger;
    metrics: NotifierMetrics;
    options: WebhookOptions;
    random?: () => number;
  }) {
    this.#pool = deps.pool;
    this.#logger = deps.logger.child({ component: 'webhook' });
    this.#metrics = deps.metrics;
    this.#options = deps.options;
    this.#random = deps.random ?? Math.random;
  }

  /** New deliveries are waiting: stop idling. */
  wake(): void {
    this.#wake?.();
  }

  async run(signal: AbortSignal): Promise<void> {
    let prunedAt = 0;
    while (!signal.aborted) {
      try {
        if (Date.now() - prunedAt > PRUNE_EVERY_MS) {
          prunedAt = Date.now();
          await pruneDelivered(this.#pool, this.#options.retainDeliveredSeconds);
        }
        const claimed = await claimDeliveries(this.#pool, {
          limit: this.#options.concurrency,
          leaseMs: this.#options.leaseMs,
          leaseToken: randomUUID(),
        });
        if (claimed.length > 0) {
          await Promise.all(claimed.map((c) => this.#deliver(c)));
          continue;
        }
        const due = await nextDueAt(this.#pool);
        const wait = due === null ? this.#options.pollMs : due.getTime() - Date.now();
        await this.#idle(Math.min(Math.max(wait, 5), this.#options.pollMs), signal);
      } catch (err) {
        if (signal.aborted) break;
        this.#logger.error({ err }, 'outbox worker failed; retrying');
        await sleep(this.#options.pollMs, signal);
      }
    }
  }

  #idle(ms: number, signal: AbortSignal): Promise<void> {
    const woken = new AbortController();
    this.#wake = () => woken.abort();
    const both = AbortSignal.any([signal, woken.signal]);
    return sleep(ms, both).finally(() => {
      this.#wake = undefined;
    });
  }

  async #deliver(claim: ClaimedDelivery): Promise<void> {
    const { url, keys, timeoutMs, maxAttempts, backoffBaseMs, backoffMaxMs } = this.#options;
    this.#metrics.webhookAttempts.inc();
    // Unix seconds of this attempt: a receiver refuses a signed request replayed outside its window.
    const timestamp = Math.floor(Date.now() / 1000);
    let error: string | undefined;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          [WEBHOOK_ID_HEADER]: claim.deliveryId,
          [WEBHOOK_TIMESTAMP_HEADER]: String(timestamp),
          [WEBHOOK_SIGNATURE_HEADER]: signWebhook(keys, claim.deliveryId, timestamp, claim.payload),
          'x-chat-attempt': String(claim.attempts + 1),
        },
        body: claim.payload,
        signal: AbortSignal.timeout(timeoutMs),
      });
      // Drain the body so the connection can be reused.
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) error = `receiver answered ${res.status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    if (error === undefined) {
      this.#metrics.webhookDelivered.inc();
      await markDelivered(this.#pool, claim);
      return;
    }
    this.#metrics.webhookFailures.inc();
    const failedAttempts = claim.attempts + 1;
    const status = await markFailed(this.#pool, claim, {
      error,
      maxAttempts,
      retryInMs: retryDelayMs(failedAttempts, { baseMs: backoffBaseMs, maxMs: backoffMaxMs }, this.#random),
    });
    if (status === 'dead') {
      this.#metrics.webhookDeadLetters.inc();
      this.#logger.warn({ deliveryId: claim.deliveryId, attempts: failedAttempts, error }, 'dead-lettered');
    } else {
      this.#logger.debug(
        { deliveryId: claim.deliveryId, attempts: failedAttempts, error },
        'delivery failed',
      );
    }
  }
}
