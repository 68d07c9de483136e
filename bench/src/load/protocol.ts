// Messages between the orchestrator and its socket load generators (over the child-process IPC channel).

export type SocketSpec = {
  userId: string;
  /** Conversation ids this user is in (the bare server subscribes from the URL; the gateway knows). */
  conversationIds?: string[];
  /** Source address, e.g. 127.0.0.3, to spread sockets over more (address, port) pairs. */
  localAddress?: string;
  /** Index into the connect command's targets (default 0). */
  target?: number;
};

export type Target = {
  /** ws://127.0.0.1:<port>/v1/ws (gateway, bare), ws://127.0.0.1:<port> (socketio). */
  url: string;
  /**
   * `gateway`: `?access_token=<jwt>`; `bare`: `?user=…&c=…` (no auth); `socketio`: Engine.IO v4 over
   * WebSocket at `/socket.io/`, the JWT in the connect packet's auth (see load/wire.ts).
   */
  kind: 'gateway' | 'bare' | 'socketio';
};

export type ConnectCommand = {
  type: 'connect';
  targets: Target[];
  sockets: SocketSpec[];
  jwtSecret: string;
  concurrency: number;
  timeoutMs: number;
  /** Stop starting new connections after this long (bounds the scenario's run time). */
  budgetMs?: number;
};

export type SendPlan = {
  /** Index into this generator's sockets and the conversation it sends into. */
  socket: number;
  conversationId: string;
};

export type RunCommand = {
  type: 'run';
  runId: string;
  /** Messages per second this generator offers (open loop: on a fixed schedule). */
  rate: number;
  durationMs: number;
  /** Senders used round-robin; the schedule decides when, the plan decides who and where. */
  plan: SendPlan[];
  /** Extra characters in each message body, to match a realistic frame size. */
  bodyPadding: number;
};

/** Closed loop: `concurrency` requests in flight over the plan's sockets, for `durationMs`. */
export type ClosedLoopCommand = {
  type: 'closedLoop';
  runId: string;
  concurrency: number;
  durationMs: number;
  plan: SendPlan[];
};

export type StatsCommand = { type: 'stats' };
/** Live counters of the current run (the orchestrator drains until every acked message is delivered). */
export type ProgressCommand = { type: 'progress' };
/** Ends the current run: the generator answers with its RunReply. */
export type FinishCommand = { type: 'finish' };
export type CloseCommand = { type: 'close' };

export type GeneratorCommand =
  | ConnectCommand
  | RunCommand
  | ClosedLoopCommand
  | StatsCommand
  | ProgressCommand
  | FinishCommand
  | CloseCommand;

export type ConnectedReply = {
  type: 'connected';
  ok: number;
  failed: number;
  ms: number;
  /** This generator's own CPU (utime + stime) over the connect phase, token signing excluded. */
  cpuMs: number;
  firstError: string | null;
};

export type RunReply = {
  type: 'ran';
  sent: number;
  acked: number;
  ackErrors: number;
  firstAckError: string | null;
  /** Bench message deliveries of this run seen by this generator's sockets. */
  received: number;
  /** Every frame of any type these sockets received from the start of the run to its finish. */
  frames: number;
  duplicates: number;
  gaps: number;
  /**
   * Deliveries that carried no `seq` (the Socket.IO reference has none): their duplicates are counted
   * per socket by message, and gaps cannot be told.
   */
  unsequenced: number;
  /** Sockets closed by the server during the run (e.g. 1013 slow consumer). */
  closed: number;
  /** Send → delivered, µs, compressed base64 HdrHistogram. */
  deliveryHistogram: string;
  /** Send → ack, µs. */
  ackHistogram: string;
  /** Sends skipped because the socket's buffer was over its limit (the generator could not keep up). */
  skipped: number;
  /** How far (ms) the sender fell behind its schedule at worst: > a few ms means the generator saturated. */
  maxScheduleLagMs: number;
};

export type StatsReply = { type: 'stats'; open: number; rss: number };
export type SentReply = { type: 'sent' };
export type ProgressReply = {
  type: 'progress';
  acked: number;
  ackErrors: number;
  pending: number;
  received: number;
  duplicates: number;
};

export type GeneratorReply =
  | ConnectedReply
  | RunReply
  | StatsReply
  | SentReply
  | ProgressReply
  | { type: 'error'; message: string };
