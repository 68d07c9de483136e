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
import { type RetryPolicy, retryPolicy, sleep } from '@chat/retry';
import type { Pool } from 'pg';
import type { NotifierConfig } from './config.js';
import { nextAttemptDelayMs, retryAfterMs } from './domain/retry.js';
import type { NotifierMetrics } from './metrics.js';
import {
  signingKey,
  signWebhook,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from './signature.js';

export type WebhookOptions = {
  url: string;
  /** HMAC keys; every delivery carries one signature per key (secret rotation). */
  keys: readonly Buffer[];
  /** When to retry a failed delivery, and after how many attempts in all it is dead-lettered. */
  retry: RetryPolicy;
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

/** The worker's options from configuration; undefined when no webhook is configured. */
export const webhookOptions = (config: Readonly<NotifierConfig>): WebhookOptions | undefined =>
  config.WEBHOOK_URL && config.WEBHOOK_SECRET.length > 0
    ? {
        url: config.WEBHOOK_URL,
        keys: config.WEBHOOK_SECRET.map(signingKey),
        retry: retryPolicy({
          name: 'webhook',
          baseMs: config.WEBHOOK_BACKOFF_MS,
          maxMs: config.WEBHOOK_BACKOFF_MAX_MS,
          maxAttempts: config.WEBHOOK_MAX_ATTEMPTS,
        }),
        timeoutMs: config.WEBHOOK_TIMEOUT_MS,
        leaseMs: config.WEBHOOK_LEASE_MS,
        concurrency: config.WEBHOOK_CONCURRENCY,
        pollMs: config.WEBHOOK_POLL_MS,
        retainDeliveredSeconds: config.WEBHOOK_RETAIN_DELIVERED_SECONDS,
      }
    : undefined;

const PRUNE_EVERY_MS = 60_000;
/** Response bytes read at most; the rest is cancelled, so a receiver's huge answer costs us nothing. */
const RESPONSE_LIMIT_BYTES = 64 * 1024;
/** Response bytes kept in `last_error`, for the operator reading `chatctl webhooks list`. */
const ERROR_BODY_CHARS = 200;

type Attempt =
  | { ok: true }
  | {
      ok: false;
      error: string;
      /** The receiver asked us to wait this long (`Retry-After`). */
      retryAfter?: number;
      /** 410 Gone: the receiver wants no more of these; retrying for a day would not change that. */
      gone?: boolean;
    };

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
    this.#metrics.webhookAttempts.inc();
    const attempt = await this.#post(claim);
    if (attempt.ok) {
      this.#metrics.webhookDelivered.inc();
      await markDelivered(this.#pool, claim);
      return;
    }
    this.#metrics.webhookFailures.inc();
    const { retry } = this.#options;
    const failedAttempts = claim.attempts + 1;
    const status = await markFailed(this.#pool, claim, {
      error: attempt.error,
      maxAttempts: attempt.gone ? failedAttempts : retry.maxAttempts,
      retryInMs: nextAttemptDelayMs(retry, failedAttempts, attempt.retryAfter, this.#random),
    });
    const context = { deliveryId: claim.deliveryId, attempts: failedAttempts, error: attempt.error };
    if (status === 'dead') {
      this.#metrics.webhookDeadLetters.inc();
      this.#logger.warn(context, 'dead-lettered; chatctl webhooks redrive sends it again');
    } else {
      this.#logger.debug(context, 'delivery failed');
    }
  }

  /**
   * One POST. Redirects are refused, not followed: the signature is for the configured URL, and a
   * receiver that moved should be reconfigured rather than be found through whatever a 3xx names.
   * The timeout covers the answer and its body.
   */
  async #post(claim: ClaimedDelivery): Promise<Attempt> {
    const { url, keys, timeoutMs } = this.#options;
    // Unix seconds of this attempt: a receiver refuses a signed request replayed outside its window.
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const res = await fetch(url, {
        method: 'POST',
        redirect: 'error',
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
      const body = await readBounded(res, RESPONSE_LIMIT_BYTES);
      if (res.ok) return { ok: true };
      const excerpt = body.replace(/\s+/g, ' ').trim().slice(0, ERROR_BODY_CHARS);
      const failure: Attempt = {
        ok: false,
        error: `receiver answered ${res.status}${excerpt ? `: ${excerpt}` : ''}`,
        gone: res.status === 410,
      };
      const retryAfter = retryAfterMs(res.headers.get('retry-after'), Date.now());
      return retryAfter === undefined ? failure : { ...failure, retryAfter };
    } catch (err) {
      return { ok: false, error: describeFailure(err, timeoutMs) };
    }
  }
}

/**
 * Reads at most `limit` bytes of a response body and cancels the rest: an endless or huge answer costs
 * `limit` bytes, not memory or time. A body that ends within the limit leaves the connection reusable.
 * Never throws: a body cut short by the timeout or a reset still leaves the status to judge by.
 */
const readBounded = async (res: Response, limit: number): Promise<string> => {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
    }
  } catch {
    // Keep what arrived.
  } finally {
    if (size >= limit) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
};

/** What went wrong, in words an operator can act on (`fetch` alone says only "fetch failed"). */
const describeFailure = (err: unknown, timeoutMs: number): string => {
  if (!(err instanceof Error)) return String(err);
  if (err.name === 'TimeoutError') return `no answer within ${timeoutMs} ms`;
  const cause = err.cause instanceof Error ? err.cause : undefined;
  if (cause?.message === 'unexpected redirect') {
    return 'receiver answered with a redirect, which is not followed: set WEBHOOK_URL to the final address';
  }
  return cause ? `${err.message}: ${cause.message}` : err.message;
};
