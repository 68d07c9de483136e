// The vocabulary of a chaos run's history: one JSON object per line, written by the orchestrator and by
// every device process, merged by time at the end. The checker is a pure function of these entries.
// `t` is milliseconds since the epoch (see `now()`), one clock for every process on the host.

export type CommandKind = 'send' | 'read' | 'leave';
export type Via = 'ws' | 'http';
/** `run`: while the nemesis works; `resolve`: the retries after the heal that settle every open outcome. */
export type OpPhase = 'run' | 'resolve';

/** One attempt of a command is invoked. Every attempt of one command shares `op` (and `mid`). */
export type InvokeEntry = {
  k: 'invoke';
  t: number;
  op: string;
  /** Attempt number, 1-based. */
  a: number;
  cmd: CommandKind;
  via: Via;
  phase: OpPhase;
  user: string;
  conv: string;
  /** SendMessage: the client's messageId (the idempotency key). */
  mid?: string;
  /** SendMessage: the body's text (first attempt only; retries send the same). */
  body?: string;
  /** SendMessage: this many 😀 are appended to `body` (large frames without a large history). */
  pad?: number;
  /** MarkRead: the watermark asked for. */
  upTo?: number;
};

/** The attempt succeeded (2xx / `ack`). */
export type OkEntry = {
  k: 'ok';
  t: number;
  op: string;
  a: number;
  /** HTTP status (201 created, 200 idempotent repeat); absent over WS. */
  status?: number;
  seq?: number;
  pos?: string;
  readSeq?: number;
};

/** The attempt was refused: the contract says nothing was written. */
export type FailEntry = { k: 'fail'; t: number; op: string; a: number; status?: number; code: string };

/** No answer, or one that does not say whether it took effect (timeout, connection lost, 5xx). */
export type UnknownEntry = { k: 'unknown'; t: number; op: string; a: number; reason: string };

/** The client stopped retrying during the run (the resolve phase settles it). */
export type GiveUpEntry = { k: 'giveup'; t: number; op: string };

export type DeviceRole = 'member' | 'canary' | 'slow';

/** A device (one socket of a user) as set up before the run. */
export type DeviceEntry = {
  k: 'device';
  t: number;
  d: string;
  user: string;
  role: DeviceRole;
  /** Index of the gateway it prefers. */
  gw: number;
  convs: string[];
};

/** Connection attempt `n` of device `d` to gateway `gw`. */
export type ConnEntry = { k: 'conn'; t: number; d: string; n: number; gw: number };
export type ConnFailEntry = { k: 'connfail'; t: number; d: string; n: number; gw: number; reason: string };
/** The `hello` frame arrived. */
export type OpenEntry = { k: 'open'; t: number; d: string; n: number; gw: number };
export type ResumeEntry = { k: 'resume'; t: number; d: string; n: number; positions: Record<string, number> };
export type ResumedEntry = {
  k: 'resumed';
  t: number;
  d: string;
  n: number;
  truncated: string[];
  unknown: string[];
};
export type CloseEntry = {
  k: 'close';
  t: number;
  d: string;
  n: number;
  code: number;
  /** `client`: the device closed it (storm, pong timeout, finish); `server`: it was closed on the device. */
  by: 'client' | 'server';
  reason: string;
};

/** An `event` frame, as received (raw: duplicates and gaps are kept). */
export type EventFrameEntry = {
  k: 'ev';
  t: number;
  d: string;
  n: number;
  conv: string;
  seq: number;
  id: string;
  type: string;
  /** MessageSent: its messageId. */
  mid?: string;
  /** MemberJoined / MemberLeft: the member. */
  user?: string;
};

export type NotificationFrameEntry = {
  k: 'notif';
  t: number;
  d: string;
  n: number;
  conv: string;
  mid: string;
  nid: string;
};

export type ReceiptFrameEntry = {
  k: 'receipt';
  t: number;
  d: string;
  n: number;
  conv: string;
  user: string;
  readSeq: number;
};

/** Frames per type a device received, written when it finishes. */
export type FrameCountsEntry = { k: 'frames'; t: number; d: string; counts: Record<string, number> };

export type FaultClass = 'F1' | 'F2' | 'F3' | 'F4' | 'F5' | 'F6' | 'F8' | 'F9' | 'F10' | 'F12';

/**
 * One fault instance: `inject` when it starts, `heal` when the nemesis undoes it (a supervisor's
 * restart, SIGCONT, …), `recovered` when the system looked whole again (services ready, projector at the
 * head it had at the heal, every device connected) or the nemesis stopped waiting.
 */
export type FaultEntry = {
  k: 'fault';
  t: number;
  id: string;
  cls: FaultClass;
  name: string;
  phase: 'inject' | 'heal' | 'recovered';
  detail?: string;
};

/** A process of the system under test started, became ready or exited. */
export type ProcEntry = {
  k: 'proc';
  t: number;
  name: string;
  event: 'spawn' | 'ready' | 'exit';
  pid: number;
  code?: number | string | null;
  /** The exit was the nemesis's doing (or the run's end), not a crash. */
  planned?: boolean;
  tail?: string;
};

/**
 * The log head and every consumer's checkpoint (`<schema>.<name>` of every `checkpoints` table: the
 * projector's, the notifier's, the relay's), polled while the run goes on.
 */
export type SampleEntry = {
  k: 'sample';
  t: number;
  head?: string;
  checkpoints?: Record<string, string>;
  /** Resident memory of each process of the system under test, bytes. */
  rss?: Record<string, number>;
  error?: string;
};

/** Counters scraped from a gateway's /metrics (they restart at 0 with the process). */
export type GatewayMetricsEntry = {
  k: 'gwmetrics';
  t: number;
  gw: string;
  pid: number;
  values: Record<string, number>;
};

export type PhaseEntry = { k: 'phase'; t: number; name: string; detail?: string };

/** One event of the log as the store's readAll returns it after the run (bodies left out). */
export type LogEntry = {
  k: 'log';
  t?: undefined;
  pos: string;
  id: string;
  stream: string;
  rev: number;
  type: string;
  at: string;
  conv?: string;
  mid?: string;
  user?: string;
  upTo?: number;
  members?: string[];
};

/** Rows and distinct event ids of the log table, counted in SQL (a second look past the store's API). */
export type LogCountEntry = { k: 'logcount'; t?: undefined; rows: number; distinctIds: number };

export type ReadModel = 'read_models' | 'notifier';

/**
 * One read-model table: `live` as the run left it, `replay` from a fresh replay of the log. Rows are
 * given by primary key and a hash of their content (keys[i] has hashes[i]): a large table's rows in
 * full would dwarf the rest of the history.
 */
export type TableEntry = {
  k: 'table';
  t?: undefined;
  model: ReadModel;
  side: 'live' | 'replay';
  table: string;
  keys: string[];
  hashes: string[];
};

/** A row in full, written for every key whose row differs between the live and the replayed table. */
export type RowEntry = {
  k: 'row';
  t?: undefined;
  model: ReadModel;
  side: 'live' | 'replay';
  table: string;
  key: string;
  row: Record<string, unknown>;
};

/**
 * An event a consumer set aside because it could not apply it (the consumer runtime's quarantine):
 * `live` as the run left it, `replay` what the fresh replays could not apply either.
 */
export type QuarantineEntry = {
  k: 'quarantine';
  t?: undefined;
  side: 'live' | 'replay';
  consumer: string;
  pos: string;
  id: string;
  stream: string;
  type: string;
  error: string;
};

/** Every consumer's checkpoint after the run, and the log head they must equal. */
export type FinalCheckpointEntry = {
  k: 'final';
  t?: undefined;
  head: string;
  checkpoints: Record<string, string>;
};

export type Entry =
  | InvokeEntry
  | OkEntry
  | FailEntry
  | UnknownEntry
  | GiveUpEntry
  | DeviceEntry
  | ConnEntry
  | ConnFailEntry
  | OpenEntry
  | ResumeEntry
  | ResumedEntry
  | CloseEntry
  | EventFrameEntry
  | NotificationFrameEntry
  | ReceiptFrameEntry
  | FrameCountsEntry
  | FaultEntry
  | ProcEntry
  | SampleEntry
  | GatewayMetricsEntry
  | PhaseEntry
  | LogEntry
  | LogCountEntry
  | TableEntry
  | RowEntry
  | QuarantineEntry
  | FinalCheckpointEntry;

export type EntryOf<K extends Entry['k']> = Extract<Entry, { k: K }>;

export type History = readonly Entry[];
