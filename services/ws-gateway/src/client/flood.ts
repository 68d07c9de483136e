/**
 * Per-connection flood control as a token bucket (API.md §4: 20 commands/s, burst 40). The state
 * lives in the socket's own user data as three numbers, so it costs no allocation and no timer.
 */
export type FloodState = { tokens: number; refillAt: number; floodSince: number; lastReject: number };

export type FloodVerdict = 'accept' | 'reject' | 'close';

export const floodCheck = (
  s: FloodState,
  now: number,
  ratePerSecond: number,
  burst: number,
  closeAfterMs = 10_000,
): FloodVerdict => {
  s.tokens = Math.min(burst, s.tokens + ((now - s.refillAt) * ratePerSecond) / 1000);
  s.refillAt = now;
  if (s.tokens >= 1) {
    s.tokens -= 1;
    return 'accept';
  }
  // A flood is a run of rejections with no quiet second between them; accepted frames inside it
  // (the refill trickle) do not end it, otherwise a steady flooder would never be closed.
  if (now - s.lastReject > 1000) s.floodSince = now;
  s.lastReject = now;
  return now - s.floodSince >= closeAfterMs ? 'close' : 'reject';
};
