/**
 * Per-user token bucket: `burst` commands at once, refilled at `ratePerSec`. In-process, so with N
 * instances a user gets up to N times the rate; it protects each instance, not a global quota.
 */
export class CommandRateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  #sweepAt = 0;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one token; returns 0 when allowed, else the whole seconds to wait (≥ 1). */
  take(userId: string): number {
    if (this.ratePerSec <= 0) return 0;
    const now = this.now();
    this.#sweep(now);
    const bucket = this.#buckets.get(userId) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSec);
    bucket.at = now;
    this.#buckets.set(userId, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.ratePerSec));
  }

  /** Full buckets carry no information: drop them now and then so idle users cost no memory. */
  #sweep(now: number) {
    if (now < this.#sweepAt) return;
    this.#sweepAt = now + 60_000;
    const fullAfterMs = (this.burst / this.ratePerSec) * 1000;
    for (const [userId, bucket] of this.#buckets) {
      if (now - bucket.at > fullAfterMs) this.#buckets.delete(userId);
    }
  }
}
