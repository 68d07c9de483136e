import type { Logger } from '@chat/platform';
import fastifyRateLimit, { type FastifyRateLimitStore, normalizeIP } from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type pg from 'pg';
import type { AuthUser } from './auth.js';
import { RateLimitedError } from './errors.js';
import { PostgresRateLimitStore } from './rate-limit-store.js';

/**
 * The budgets a request can draw from: `commands` per user (HTTP writes and commands over NATS from
 * the ws-gateway alike), `queries` per user (GET routes, `minPosition` waits included) and `anonymous`
 * per client IP (requests without a valid token: refused ones, ops and docs routes).
 */
export type RateLimitKind = 'commands' | 'queries' | 'anonymous';

export type RateLimitPolicy = {
  windowMs: number;
  /** Requests per window; 0 turns that limit off. */
  max: Record<RateLimitKind, number>;
};

export type RateLimitOptions = { pool: pg.Pool; logger: Logger; policy: RateLimitPolicy };

/** The one limiter: the HTTP hook and the NATS command path count in the same store with the same keys. */
export class RateLimits {
  constructor(
    private readonly store: PostgresRateLimitStore,
    private readonly policy: RateLimitPolicy,
    private readonly logger: Logger,
  ) {}

  static key(kind: RateLimitKind, subject: string): string {
    return `${kind}:${subject}`;
  }

  static kindOf(key: string): RateLimitKind {
    return key.slice(0, key.indexOf(':')) as RateLimitKind;
  }

  maxOf(kind: RateLimitKind): number {
    return this.policy.max[kind];
  }

  get windowMs(): number {
    return this.policy.windowMs;
  }

  /** Resolves when every hit counted so far is in the shared store (see its tolerance). */
  drained(): Promise<void> {
    return this.store.drained();
  }

  /** Counts one hit on `key`: the store behind `@fastify/rate-limit` and `take` alike. */
  hit(key: string, windowMs = this.policy.windowMs) {
    return this.store.hit(key, windowMs);
  }

  /**
   * Counts one request of `subject` (a userId, or an IP for `anonymous`) and throws `rate_limited`
   * once the window's budget is spent. Like the HTTP hook, it lets requests through when the store
   * cannot answer: the limit protects capacity and must not become an outage of its own.
   */
  async take(kind: RateLimitKind, subject: string): Promise<void> {
    const max = this.maxOf(kind);
    if (max === 0) return;
    let count: { current: number; ttl: number };
    try {
      count = await this.hit(RateLimits.key(kind, subject));
    } catch (err) {
      this.logger.warn({ err }, 'rate-limit store failed; request let through');
      return;
    }
    if (count.current > max) throw new RateLimitedError(retryAfterSeconds(count.ttl));
  }

  /** For a request that failed authentication: counts against its IP. */
  takeAnonymous(request: FastifyRequest): Promise<void> {
    return this.take('anonymous', normalizeIP(request.ip));
  }
}

const retryAfterSeconds = (ttlMs: number): number => Math.max(1, Math.ceil(ttlMs / 1000));

/** What a request counts against: its user's command or query budget, or its IP before authentication. */
const keyOf = (request: FastifyRequest): string => {
  const user: AuthUser | null = request.user;
  if (!user) return RateLimits.key('anonymous', normalizeIP(request.ip));
  const reads = request.method === 'GET' || request.method === 'HEAD';
  return RateLimits.key(reads ? 'queries' : 'commands', user.userId);
};

declare module 'fastify' {
  interface FastifyInstance {
    rateLimits: RateLimits;
  }
}

/**
 * `@fastify/rate-limit` on every route registered after it, answering `429 rate_limited` with
 * `Retry-After` through the one error handler. Its hook runs after the route's authentication hook
 * (it is appended to the route's own `onRequest` list), so requests are keyed by the verified user.
 */
export const rateLimitPlugin = fp<RateLimitOptions>(
  async (app, { pool, logger, policy }) => {
    const store = new PostgresRateLimitStore(pool, logger);
    const limits = new RateLimits(store, policy, logger);
    app.decorate('rateLimits', limits);
    // Hits still waiting for their flush go to the shared table before the pool closes.
    app.addHook('onClose', () => limits.drained());
    // @fastify/rate-limit builds its store with `new`; this one forwards to the shared counters.
    class SharedStore implements FastifyRateLimitStore {
      incr(
        key: string,
        callback: (error: Error | null, result?: { current: number; ttl: number }) => void,
        timeWindow: number,
      ): void {
        limits.hit(key, timeWindow).then(
          (count) => callback(null, count),
          (err: unknown) => {
            logger.warn({ err }, 'rate-limit store failed; request let through');
            callback(err instanceof Error ? err : new Error(String(err)));
          },
        );
      }
      child(): FastifyRateLimitStore {
        return this;
      }
    }
    await app.register(fastifyRateLimit, {
      global: true,
      hook: 'onRequest',
      store: SharedStore,
      keyGenerator: keyOf,
      allowList: (_request, key) => limits.maxOf(RateLimits.kindOf(key)) === 0,
      max: (_request, key) => limits.maxOf(RateLimits.kindOf(key)),
      timeWindow: policy.windowMs,
      skipOnError: true,
      // The error handler sets Retry-After from the error, for HTTP and NATS alike.
      addHeaders: { 'retry-after': false },
      errorResponseBuilder: (_request, context) => new RateLimitedError(retryAfterSeconds(context.ttl)),
    });
  },
  { name: 'chat-rate-limit' },
);
