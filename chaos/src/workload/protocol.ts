import type { DeviceRole } from '../history/types.js';
import type { CommandSpec } from './commands.js';

// Messages between the run and its device processes (child-process IPC). A device process holds a share
// of the sockets, issues its share of the commands, and writes everything it sees to its own history
// file.

export type DeviceSpec = {
  d: string;
  user: string;
  role: DeviceRole;
  /** Index of the gateway it prefers (it fails over to the other when that one is down). */
  gw: number;
  convs: string[];
};

export type WorkloadSettings = {
  /** Commands per second this process offers (open loop), spread over its member devices. */
  rate: number;
  /** Share of commands sent as WS frames (the rest over HTTP). */
  wsShare: number;
  /** Share of commands that are MarkRead (the rest SendMessage). */
  readShare: number;
  /** Share of messages that mention another member (notifications). */
  mentionShare: number;
  /** Commands in flight at most; more are not started (and counted as skipped). */
  maxInFlight: number;
  /**
   * An attempt with no answer after this long is `unknown`; each attempt draws one of these (clients
   * differ: some give up before the gateway's own command timeout, some wait for its answer).
   */
  commandTimeoutsMs: number[];
  /** Attempts per command, and how long a command is retried, before the client gives up. */
  maxAttempts: number;
  maxCommandAgeMs: number;
  /** App-level ping every this often; no pong within `pongTimeoutMs` closes the socket. */
  pingEveryMs: number;
  pongTimeoutMs: number;
};

export type StartCommand = {
  type: 'start';
  index: number;
  historyFile: string;
  apiUrl: string;
  /** ws://…/v1/ws per gateway. */
  gateways: string[];
  jwtSecret: string;
  devices: DeviceSpec[];
  /** Every member of every conversation these devices are in (for mentions). */
  members: Record<string, string[]>;
  settings: WorkloadSettings;
  /** Open at most this many sockets at once while connecting. */
  connectConcurrency: number;
};

export type DeviceCommand =
  | StartCommand
  /** Start or stop issuing new commands (retries of started ones go on). */
  | { type: 'writing'; on: boolean }
  /** Every socket closed by the client at once, reconnecting after a uniform delay in [0, jitterMs]. */
  | { type: 'storm'; jitterMs: number }
  /** The devices of `role` stop reading their sockets (and answer nothing), or start again. */
  | { type: 'reading'; role: DeviceRole; on: boolean }
  /**
   * Progress; with `heads`, how many devices are behind a conversation's last seq (`left`:
   * `<conversationId>|<userId>` pairs removed from a conversation, who need not follow it).
   */
  | { type: 'status'; heads?: Record<string, number>; left?: string[] }
  /** The commands that never succeeded during the run (the resolve phase retries them). */
  | { type: 'unresolved' }
  /** Closes every socket, writes the frame counts, flushes the history file. */
  | { type: 'finish' };

/** A command to retry with the same messageId and body, continuing its attempt numbering. */
export type UnresolvedCommand = Omit<CommandSpec, 'token'> & { attempts: number };

export type StatusReply = {
  type: 'status';
  devices: number;
  open: number;
  inFlight: number;
  invoked: number;
  skipped: number;
  /** (device, conversation) pairs behind the given heads; the first few of them. */
  behind: number;
  behindSample: string[];
};

export type DeviceReply =
  | { type: 'started'; open: number; devices: number; ms: number }
  | { type: 'ok' }
  | StatusReply
  | { type: 'unresolved'; ops: UnresolvedCommand[] }
  | { type: 'finished'; entries: number };
