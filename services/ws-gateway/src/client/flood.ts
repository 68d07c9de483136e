/**
 * Per-connection flood control (API.md §4) as two token buckets kept in the socket's own user data:
 * numbers only, no allocation, no timer.
 * - Every frame except `ping` draws from the command bucket (20/s, burst 40 by default), unreadable and
 *   invalid frames included: answering them costs the server as much as answering a command.
 * - `ping` is "not counted" by the contract, so it never costs the client a command; it draws from a
 *   separate, generous bucket instead, so that a ping flood is bounded as well.
 * Rejections of either kind make up one flood episode: still flooding after 10 s → close 1008.
 */
export type FloodState = {
  /** Thousandths of a token (integers stay unboxed in the socket's user data). */
  tokens: number;
  refillAt: number;
  pingTokens: number;
  pingRefillAt: number;
  floodSince: number;
  lastReject: number;
};

/** Integer milliseconds of one clock for every `now`. */
export type FloodLimits = {
  ratePerSecond: number;
  burst: number;
  pingRatePerSecond: number;
  pingBurst: number;
  /** A client still flooding this long after its first rejection is closed. */
  closeAfterMs: number;
};

export type FloodVerdict = 'accept' | 'reject' | 'close';

export const FLOOD_CLOSE_AFTER_MS = 10_000;

export const floodCheck = (
  s: FloodState,
  kind: 'command' | 'ping',
  now: number,
  limits: FloodLimits,
): FloodVerdict => {
  // Tokens per second × elapsed milliseconds = thousandths of a token.
  if (kind === 'ping') {
    const refill = Math.floor((now - s.pingRefillAt) * limits.pingRatePerSecond);
    s.pingTokens = Math.min(limits.pingBurst * 1000, s.pingTokens + refill);
    s.pingRefillAt = now;
    if (s.pingTokens >= 1000) {
      s.pingTokens -= 1000;
      return 'accept';
    }
  } else {
    const refill = Math.floor((now - s.refillAt) * limits.ratePerSecond);
    s.tokens = Math.min(limits.burst * 1000, s.tokens + refill);
    s.refillAt = now;
    if (s.tokens >= 1000) {
      s.tokens -= 1000;
      return 'accept';
    }
  }
  // A flood is a run of rejections with no quiet second between them; accepted frames inside it
  // (the refill trickle) do not end it, otherwise a steady flooder would never be closed.
  if (now - s.lastReject > 1000) s.floodSince = now;
  s.lastReject = now;
  return now - s.floodSince >= limits.closeAfterMs ? 'close' : 'reject';
};
