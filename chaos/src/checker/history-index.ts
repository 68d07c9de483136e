import type {
  DeviceEntry,
  Entry,
  EntryOf,
  FailEntry,
  FaultClass,
  GiveUpEntry,
  History,
  InvokeEntry,
  LogEntry,
  OkEntry,
  UnknownEntry,
} from '../history/types.js';

// One pass over a history that files its entries the ways the checks look them up.

export type Attempt = { invoke: InvokeEntry; outcome?: OkEntry | FailEntry | UnknownEntry };

export type Op = {
  op: string;
  first: InvokeEntry;
  attempts: Attempt[];
  giveup?: GiveUpEntry;
};

/** One membership of a user in a conversation: from the event that made them a member to the one that ended it. */
export type Membership = { fromSeq: number; fromPos: string; toSeq?: number; toPos?: string };

export type FaultInstance = {
  id: string;
  cls: FaultClass;
  name: string;
  inject: number;
  heal?: number;
  recovered?: number;
  detail?: string;
  healDetail?: string;
  recoveredDetail?: string;
};

export type DeviceTimeline = EntryOf<
  'conn' | 'connfail' | 'open' | 'resume' | 'resumed' | 'close' | 'ev' | 'notif' | 'receipt'
>;

export type HistoryIndex = {
  entries: History;
  ops: Map<string, Op>;
  /** The log in position order. */
  log: LogEntry[];
  logByPos: Map<string, LogEntry>;
  logById: Map<string, LogEntry[]>;
  /** Each stream's events in log order. */
  streams: Map<string, LogEntry[]>;
  /** MessageSent events by `<conversationId>|<messageId>`. */
  messages: Map<string, LogEntry[]>;
  /** Conversation → user → memberships, from the log. */
  members: Map<string, Map<string, Membership[]>>;
  /** Conversation → its last seq in the log. */
  lastSeq: Map<string, number>;
  devices: Map<string, DeviceEntry>;
  timelines: Map<string, DeviceTimeline[]>;
  faults: FaultInstance[];
  samples: EntryOf<'sample'>[];
  procs: EntryOf<'proc'>[];
  phases: EntryOf<'phase'>[];
  rows: EntryOf<'row'>[];
  quarantine: EntryOf<'quarantine'>[];
  /** `<model>.<table>` → its live and replayed rows (keys and hashes). */
  tables: Map<string, { live?: EntryOf<'table'>; replay?: EntryOf<'table'> }>;
  gatewayMetrics: EntryOf<'gwmetrics'>[];
  logCount?: EntryOf<'logcount'>;
  final?: EntryOf<'final'>;
};

export const conversationOf = (stream: string): string | undefined =>
  stream.startsWith('conversation-') ? stream.slice('conversation-'.length) : undefined;

export const messageKey = (conv: string, mid: string): string => `${conv}|${mid}`;

const push = <K, V>(map: Map<K, V[]>, key: K, value: V): void => {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
};

const isDeviceTimeline = (e: Entry): e is DeviceTimeline =>
  e.k === 'conn' ||
  e.k === 'connfail' ||
  e.k === 'open' ||
  e.k === 'resume' ||
  e.k === 'resumed' ||
  e.k === 'close' ||
  e.k === 'ev' ||
  e.k === 'notif' ||
  e.k === 'receipt';

export const indexHistory = (entries: History): HistoryIndex => {
  const ix: HistoryIndex = {
    entries,
    ops: new Map(),
    log: [],
    logByPos: new Map(),
    logById: new Map(),
    streams: new Map(),
    messages: new Map(),
    members: new Map(),
    lastSeq: new Map(),
    devices: new Map(),
    timelines: new Map(),
    faults: [],
    samples: [],
    procs: [],
    phases: [],
    rows: [],
    quarantine: [],
    tables: new Map(),
    gatewayMetrics: [],
  };
  const faults = new Map<string, FaultInstance>();
  const attempt = (op: string, a: number): Attempt | undefined =>
    ix.ops.get(op)?.attempts.find((x) => x.invoke.a === a);
  for (const e of entries) {
    if (isDeviceTimeline(e)) {
      push(ix.timelines, e.d, e);
      continue;
    }
    switch (e.k) {
      case 'invoke': {
        const op = ix.ops.get(e.op);
        if (op) op.attempts.push({ invoke: e });
        else ix.ops.set(e.op, { op: e.op, first: e, attempts: [{ invoke: e }] });
        break;
      }
      case 'ok':
      case 'fail':
      case 'unknown': {
        const at = attempt(e.op, e.a);
        if (at && !at.outcome) at.outcome = e;
        break;
      }
      case 'giveup': {
        const op = ix.ops.get(e.op);
        if (op) op.giveup = e;
        break;
      }
      case 'device':
        ix.devices.set(e.d, e);
        break;
      case 'fault': {
        const f = faults.get(e.id);
        if (e.phase === 'inject' || !f) {
          faults.set(e.id, {
            id: e.id,
            cls: e.cls,
            name: e.name,
            inject: e.t,
            ...(e.detail ? { detail: e.detail } : {}),
          });
        } else if (e.phase === 'heal') {
          f.heal = e.t;
          if (e.detail) f.healDetail = e.detail;
        } else {
          f.recovered = e.t;
          if (e.detail) f.recoveredDetail = e.detail;
        }
        break;
      }
      case 'sample':
        ix.samples.push(e);
        break;
      case 'proc':
        ix.procs.push(e);
        break;
      case 'phase':
        ix.phases.push(e);
        break;
      case 'gwmetrics':
        ix.gatewayMetrics.push(e);
        break;
      case 'log':
        ix.log.push(e);
        break;
      case 'logcount':
        ix.logCount = e;
        break;
      case 'row':
        ix.rows.push(e);
        break;
      case 'quarantine':
        ix.quarantine.push(e);
        break;
      case 'table': {
        const name = `${e.model}.${e.table}`;
        const t = ix.tables.get(name) ?? {};
        t[e.side] = e;
        ix.tables.set(name, t);
        break;
      }
      case 'final':
        ix.final = e;
        break;
      case 'frames':
        break;
      default: {
        const never: never = e;
        throw new Error(`unknown history entry ${JSON.stringify(never)}`);
      }
    }
  }
  ix.faults = [...faults.values()].sort((a, b) => a.inject - b.inject);
  ix.log.sort((a, b) => (a.pos < b.pos ? -1 : a.pos > b.pos ? 1 : 0));
  for (const e of ix.log) indexLogEvent(ix, e);
  return ix;
};

const indexLogEvent = (ix: HistoryIndex, e: LogEntry): void => {
  ix.logByPos.set(e.pos, e);
  push(ix.logById, e.id, e);
  push(ix.streams, e.stream, e);
  const conv = conversationOf(e.stream);
  if (conv === undefined) return;
  ix.lastSeq.set(conv, Math.max(ix.lastSeq.get(conv) ?? -1, e.rev));
  if (e.type === 'MessageSent' && e.mid) push(ix.messages, messageKey(conv, e.mid), e);
  const members = ix.members.get(conv) ?? new Map<string, Membership[]>();
  ix.members.set(conv, members);
  const join = (user: string) => {
    const list = members.get(user) ?? [];
    const open = list.at(-1);
    if (open && open.toSeq === undefined) return;
    list.push({ fromSeq: e.rev, fromPos: e.pos });
    members.set(user, list);
  };
  if (e.type === 'ConversationStarted') for (const u of e.members ?? []) join(u);
  else if (e.type === 'MemberJoined' && e.user) join(e.user);
  else if (e.type === 'MemberLeft' && e.user) {
    const open = members.get(e.user)?.at(-1);
    if (open && open.toSeq === undefined) {
      open.toSeq = e.rev;
      open.toPos = e.pos;
    }
  }
};

/** Whether `user` was a member of `conv` when the event with `seq` was appended (its MemberLeft included). */
export const memberAtSeq = (ix: HistoryIndex, conv: string, user: string, seq: number): boolean =>
  (ix.members.get(conv)?.get(user) ?? []).some(
    (m) => m.fromSeq <= seq && (m.toSeq === undefined || seq <= m.toSeq),
  );

/** Whether `user` was a member of `conv` at log position `pos` (any stream's event). */
export const memberAtPosition = (ix: HistoryIndex, conv: string, user: string, pos: string): boolean =>
  (ix.members.get(conv)?.get(user) ?? []).some(
    (m) => m.fromPos <= pos && (m.toPos === undefined || pos <= m.toPos),
  );

/** Whether `user` is a member of `conv` at the end of the log. */
export const memberAtEnd = (ix: HistoryIndex, conv: string, user: string): boolean => {
  const last = ix.members.get(conv)?.get(user)?.at(-1);
  return last !== undefined && last.toSeq === undefined;
};

/** The attempts an op made while the nemesis worked. */
export const runAttempts = (op: Op): Attempt[] => op.attempts.filter((a) => a.invoke.phase === 'run');
