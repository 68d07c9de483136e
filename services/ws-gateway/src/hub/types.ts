import type { WebSocket } from 'uWebSockets.js';
import type { LocalUser } from './user.js';

/**
 * What uWS keeps per socket (it copies these properties onto the socket object). Deliberately the
 * user's shared entry, booleans and small integers: the budget is ≤ 2 KiB RSS per idle socket, so no
 * closures, timers or collections live here, and no number that needs a heap box (a millisecond epoch
 * time or a fractional token count would each cost one per socket).
 */
export type SocketData = {
  user: LocalUser;
  /** Token expiry, epoch seconds. */
  expiresAt: number;
  /** The token has role `analyst`: its command frames are refused (403 `forbidden`). */
  readOnly: boolean;
  /** When the socket opened, gateway clock (`monotonicMs`); ends the pre-resume window. */
  openedAt: number;
  /** False until the socket's first frame or the resume grace period ends (see Hub.open). */
  live: boolean;
  closed: boolean;
  /** Flood control (client/flood.ts): thousandths of a token, gateway-clock times. */
  tokens: number;
  refillAt: number;
  pingTokens: number;
  pingRefillAt: number;
  floodSince: number;
  lastReject: number;
};

/**
 * Whole milliseconds since the process started, from the monotonic clock: small integers (V8 keeps
 * them unboxed for about 24 days of uptime) that wall-clock jumps cannot move.
 */
export const monotonicMs = (): number => Math.floor(performance.now());

export type Socket = WebSocket<SocketData>;

/** A frame held back for a socket that is catching up; `seq` -1 for frames without one (receipts). */
export type HeldFrame = { seq: number; text: string };
