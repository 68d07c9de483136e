/**
 * The one retry policy of the system: capped exponential backoff with "full jitter" (a uniform draw
 * between 0 and the capped exponential; AWS architecture blog, "Exponential Backoff And Jitter").
 * Full jitter spreads the retries of many callers that failed together — instances colliding on one
 * conversation, thousands of clients reconnecting to a restarted gateway, webhooks to a receiver coming
 * back — instead of sending them in synchronised waves. Every retry in the code base names one of the
 * policies below (or one built from configuration) rather than writing its own loop and constants.
 */
export type RetryPolicy = {
  /** Shown in logs and metrics. */
  readonly name: string;
  /** Ceiling of the first retry's delay. */
  readonly baseMs: number;
  /** Largest ceiling, however many attempts failed. */
  readonly maxMs: number;
  /** Attempts in all, the first included; `Infinity` retries until the signal aborts. */
  readonly maxAttempts: number;
};

export const retryPolicy = (policy: RetryPolicy): RetryPolicy => {
  if (!(policy.baseMs >= 0 && policy.maxMs >= policy.baseMs && policy.maxAttempts >= 1))
    throw new RangeError(`invalid retry policy ${policy.name}`);
  return Object.freeze({ ...policy });
};

export const RETRY = {
  /**
   * A version conflict: another instance wrote the same conversation. The retry re-reads only the
   * newer events, so it is cheap; a small random pause lets one of the colliding writers through first.
   */
  conflict: retryPolicy({ name: 'conflict', baseMs: 1, maxMs: 64, maxAttempts: 11 }),
  /**
   * A dependency (Postgres, NATS, the event store) did not answer. Consumers keep their position and
   * wait for it to come back, however long that takes.
   */
  dependency: retryPolicy({ name: 'dependency', baseMs: 100, maxMs: 5_000, maxAttempts: Infinity }),
  /** A client reconnecting to a gateway: spread over seconds so a restarted gateway is not stampeded. */
  reconnect: retryPolicy({ name: 'reconnect', baseMs: 250, maxMs: 10_000, maxAttempts: Infinity }),
} as const;

/**
 * Delay before the retry that follows `failedAttempts` failures (1 = the first attempt failed):
 * uniform in [0, min(maxMs, baseMs · 2^(failedAttempts − 1))].
 */
export const retryDelayMs = (
  policy: RetryPolicy,
  failedAttempts: number,
  random: () => number = Math.random,
): number => {
  const exponent = Math.min(Math.max(failedAttempts - 1, 0), 30);
  return Math.floor(random() * Math.min(policy.maxMs, policy.baseMs * 2 ** exponent));
};

/** Resolves after `ms`, or at once (without throwing) when `signal` aborts. */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted || ms <= 0) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

export class RetriesExhaustedError extends Error {
  override readonly name = 'RetriesExhaustedError';
  constructor(
    readonly policy: RetryPolicy,
    readonly attempts: number,
    options: { cause: unknown },
  ) {
    super(`${policy.name}: gave up after ${attempts} attempts`, options);
  }
}

export type RetryOptions = {
  /** Errors for which another attempt may help; others are thrown at once. Default: every error. */
  retryable?: (error: unknown) => boolean;
  /** Called before each wait, e.g. to log or count the retry. */
  onRetry?: (error: unknown, failedAttempts: number, delayMs: number) => void;
  signal?: AbortSignal;
  random?: () => number;
};

/**
 * Runs `attempt` until it succeeds, a non-retryable error is thrown, the policy's attempts are used up
 * (RetriesExhaustedError, with the last error as its cause) or the signal aborts (the last error).
 */
export const withRetry = async <T>(
  policy: RetryPolicy,
  attempt: (attemptNumber: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> => {
  for (let n = 1; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (options.retryable && !options.retryable(error)) throw error;
      if (options.signal?.aborted) throw error;
      if (n >= policy.maxAttempts) throw new RetriesExhaustedError(policy, n, { cause: error });
      const delay = retryDelayMs(policy, n, options.random);
      options.onRetry?.(error, n, delay);
      await sleep(delay, options.signal);
      if (options.signal?.aborted) throw error;
    }
  }
};
