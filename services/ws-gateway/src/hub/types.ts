import type { WebSocket } from 'uWebSockets.js';
import type { LocalUser } from './user.js';

/**
 * What uWS keeps per socket. Deliberately a handful of numbers and the user's shared entry: the budget
 * is ≤ 2 KiB RSS per idle socket, so no closures, timers or collections live here.
 */
export type SocketData = {
  user: LocalUser;
  /** Token expiry, epoch ms. */
  expiresAt: number;
  /** When the socket opened, epoch ms; used to end the pre-resume window. */
  openedAt: number;
  /** False until the socket's first frame or the resume grace period ends (see Hub.open). */
  live: boolean;
  closed: boolean;
  tokens: number;
  refillAt: number;
  pingTokens: number;
  pingRefillAt: number;
  floodSince: number;
  lastReject: number;
};

export type Socket = WebSocket<SocketData>;

/** A frame held back for a socket that is catching up; `seq` -1 for frames without one (receipts). */
export type HeldFrame = { seq: number; text: string };
