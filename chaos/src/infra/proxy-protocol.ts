// Messages between the run and its fault proxy process (child-process IPC).

export type ProxyRoute = { name: string; listenPort: number; targetPort: number };

export type ProxyMode = {
  /** Added to every chunk, each way. */
  delayMs: number;
  /** Plus a uniform random share of this (order is kept). */
  jitterMs: number;
  /** Nothing flows either way; connections stay open. */
  stalled: boolean;
};

export type ProxyCommand =
  | { type: 'listen'; routes: ProxyRoute[] }
  | { type: 'mode'; routes: string[]; mode: Partial<ProxyMode> }
  /** Resets every open connection of the routes (new ones are let through). */
  | { type: 'cut'; routes: string[] }
  | { type: 'status' };

export type ProxyReply = { type: 'ok'; connections: Record<string, number> };
