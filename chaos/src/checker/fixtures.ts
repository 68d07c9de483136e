import { type TableRow, tableEntries } from '../history/rows.js';
import type { Entry, LogEntry } from '../history/types.js';

// A small, correct history built by hand for the checker's tests: two conversations, four devices, a
// canary removed half-way, one command whose outcome was unknown until the resolve phase, one fault.
// Tests break a copy of it in one place (a skipped event, a duplicate, a replay that differs) and
// expect the checker to say so.

export const C1 = '11111111-1111-4111-8111-111111111111';
export const C2 = '22222222-2222-4222-8222-222222222222';

const hex = (n: number) => n.toString(16).padStart(32, '0');
const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

type World = {
  entries: Entry[];
  log: LogEntry[];
  t: number;
  position: number;
  ids: number;
  seq: Map<string, number>;
  members: Map<string, Set<string>>;
  devices: { d: string; user: string }[];
};

const append = (w: World, conv: string, type: string, extra: Partial<LogEntry> = {}): LogEntry => {
  const rev = (w.seq.get(conv) ?? -1) + 1;
  w.seq.set(conv, rev);
  const e: LogEntry = {
    k: 'log',
    pos: hex(++w.position),
    id: uuid(++w.ids),
    stream: `conversation-${conv}`,
    rev,
    type,
    at: new Date(w.t).toISOString(),
    conv,
    ...extra,
  };
  w.log.push(e);
  // Every member's device gets the frame a few ms later (a leaver gets its own MemberLeft).
  for (const { d, user } of w.devices) {
    if (!w.members.get(conv)?.has(user) && !(type === 'MemberLeft' && extra.user === user)) continue;
    w.entries.push({
      k: 'ev',
      t: w.t + 5,
      d,
      n: 1,
      conv,
      seq: rev,
      id: e.id,
      type,
      ...(extra.mid ? { mid: extra.mid } : {}),
      ...(extra.user ? { user: extra.user } : {}),
    });
  }
  return e;
};

/**
 * The history; `mutateRows` may change the read-model rows before they are hashed (a projector
 * writing something else than the replay).
 */
export const correctHistory = (mutateRows: (rows: TableRow[]) => TableRow[] = (rows) => rows): Entry[] => {
  const w: World = {
    entries: [],
    log: [],
    t: 1_800_000_000_000,
    position: 0,
    ids: 0,
    seq: new Map(),
    members: new Map([
      [C1, new Set(['alice', 'bob', 'carol'])],
      [C2, new Set(['alice', 'dave'])],
    ]),
    devices: [
      { d: 'dA', user: 'alice' },
      { d: 'dB', user: 'bob' },
      { d: 'dC', user: 'carol' },
      { d: 'dD', user: 'dave' },
    ],
  };
  const e = w.entries;
  for (const { d, user } of w.devices) {
    const convs = [...w.members].filter(([, m]) => m.has(user)).map(([c]) => c);
    e.push({ k: 'device', t: w.t, d, user, role: user === 'carol' ? 'canary' : 'member', gw: 0, convs });
    e.push({ k: 'conn', t: w.t, d, n: 1, gw: 0 });
    e.push({ k: 'open', t: w.t + 1, d, n: 1, gw: 0 });
    e.push({ k: 'resume', t: w.t + 1, d, n: 1, positions: Object.fromEntries(convs.map((c) => [c, -1])) });
    e.push({ k: 'resumed', t: w.t + 2, d, n: 1, truncated: [], unknown: [] });
  }
  w.t += 10;
  append(w, C1, 'ConversationStarted', { members: ['alice', 'bob', 'carol'] });
  append(w, C2, 'ConversationStarted', { members: ['alice', 'dave'] });
  let op = 0;
  let mid = 1000;
  const sample = () => {
    const head = w.log.at(-1)!.pos;
    e.push({
      k: 'sample',
      t: w.t + 8,
      head,
      checkpoints: { 'read_models.read_models': head, 'relay.relay': head },
    });
  };
  const send = (conv: string, user: string, outcome: 'ok' | 'unknown') => {
    w.t += 100;
    const o = `p.${++op}`;
    const m = uuid(++mid);
    e.push({
      k: 'invoke',
      t: w.t,
      op: o,
      a: 1,
      cmd: 'send',
      via: 'ws',
      phase: 'run',
      user,
      conv,
      mid: m,
      body: o,
    });
    const event = append(w, conv, 'MessageSent', { mid: m });
    if (outcome === 'ok') e.push({ k: 'ok', t: w.t + 3, op: o, a: 1, seq: event.rev, pos: event.pos });
    else e.push({ k: 'unknown', t: w.t + 3, op: o, a: 1, reason: 'socket closed' });
    sample();
    return o;
  };
  send(C1, 'alice', 'ok');
  send(C1, 'bob', 'ok');
  send(C2, 'dave', 'ok');
  e.push({ k: 'fault', t: w.t + 50, id: 'f1', cls: 'F1', name: 'SIGKILL command-api', phase: 'inject' });
  e.push({ k: 'fault', t: w.t + 50, id: 'f1', cls: 'F1', name: 'SIGKILL command-api', phase: 'heal' });
  const unknown = send(C1, 'alice', 'unknown');
  send(C1, 'bob', 'ok');
  e.push({ k: 'fault', t: w.t + 60, id: 'f1', cls: 'F1', name: 'SIGKILL command-api', phase: 'recovered' });
  // The canary leaves C1: it gets its own MemberLeft and nothing after.
  w.t += 100;
  e.push({
    k: 'invoke',
    t: w.t,
    op: 'o.leave.1',
    a: 1,
    cmd: 'leave',
    via: 'http',
    phase: 'run',
    user: 'carol',
    conv: C1,
  });
  w.members.get(C1)!.delete('carol');
  const left = append(w, C1, 'MemberLeft', { user: 'carol' });
  e.push({ k: 'ok', t: w.t + 3, op: 'o.leave.1', a: 1, status: 200, seq: left.rev, pos: left.pos });
  sample();
  send(C1, 'alice', 'ok');
  send(C2, 'alice', 'ok');
  // MarkRead by bob, receipt to the members of C1.
  w.t += 100;
  e.push({
    k: 'invoke',
    t: w.t,
    op: 'p.read',
    a: 1,
    cmd: 'read',
    via: 'ws',
    phase: 'run',
    user: 'bob',
    conv: C1,
    upTo: 2,
  });
  const read: LogEntry = {
    k: 'log',
    pos: hex(++w.position),
    id: uuid(++w.ids),
    stream: `receipts-${C1}`,
    rev: 0,
    type: 'ConversationRead',
    at: new Date(w.t).toISOString(),
    conv: C1,
    user: 'bob',
    upTo: 2,
  };
  w.log.push(read);
  e.push({ k: 'ok', t: w.t + 3, op: 'p.read', a: 1, readSeq: 2, pos: read.pos });
  for (const d of ['dA', 'dB'])
    e.push({ k: 'receipt', t: w.t + 5, d, n: 1, conv: C1, user: 'bob', readSeq: 2 });
  sample();
  // The resolve phase settles the unknown send: 200, it had been written.
  w.t += 100;
  e.push({ k: 'phase', t: w.t, name: 'resolve' });
  e.push({
    k: 'invoke',
    t: w.t,
    op: unknown,
    a: 101,
    cmd: 'send',
    via: 'http',
    phase: 'resolve',
    user: 'alice',
    conv: C1,
  });
  const written = w.log.find(
    (l) => l.mid && e.some((x) => x.k === 'invoke' && x.op === unknown && x.mid === l.mid),
  )!;
  e.push({ k: 'ok', t: w.t + 3, op: unknown, a: 101, status: 200, seq: written.rev, pos: written.pos });
  e.sort((a, b) => (a.t ?? 0) - (b.t ?? 0));
  // The snapshot: the log, a projection of it twice (live and replay), the final checkpoints.
  e.push(...w.log);
  e.push({ k: 'logcount', rows: w.log.length, distinctIds: w.log.length });
  const rows: TableRow[] = [];
  for (const side of ['live', 'replay'] as const) {
    for (const [conv, seq] of w.seq) {
      const messages = w.log.filter((l) => l.conv === conv && l.type === 'MessageSent');
      const row = { conversation_id: conv, last_seq: seq, message_count: messages.length };
      rows.push({ model: 'read_models', side, table: 'conversations', key: conv, row });
      for (const m of messages) {
        const key = `${conv}|${m.mid}`;
        const message = { conversation_id: conv, message_id: m.mid, seq: m.rev };
        rows.push({ model: 'read_models', side, table: 'messages', key, row: message });
      }
    }
  }
  e.push(...tableEntries(mutateRows(rows)));
  const head = w.log.at(-1)!.pos;
  e.push({ k: 'final', head, checkpoints: { 'read_models.read_models': head, 'relay.relay': head } });
  return e;
};
