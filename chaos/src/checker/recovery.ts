import type { EntryOf, FaultClass } from '../history/types.js';
import type { CommandFigures } from './commands.js';
import {
  type FaultInstance,
  type HistoryIndex,
  memberAtEnd,
  memberAtSeq,
  messageKey,
  type Op,
} from './history-index.js';

// Check 7 and the per-fault-class table: what each fault cost (recovery times, latency while it lasted)
// and what happened to the commands started while it was on.

/** A fault's window when the nemesis recorded no recovery: this long after its heal. */
const DEFAULT_WINDOW_AFTER_HEAL_MS = 30_000;

export type Recovery = {
  /** Heal → the first command acknowledged after it. */
  apiMs: number | null;
  /** Heal → every consumer's checkpoint at the head the log had at the heal. */
  lagMs: number | null;
  /** Heal → every device holding every event its conversations had at the heal. */
  clientsMs: number | null;
  /** Devices × conversations that never caught up (with the heal's events). */
  notCaughtUp: number;
  /** Most sockets (re)opened within one second of the window. */
  peakReconnectsPerSecond: number;
};

export type FaultRow = FaultInstance & { window: [number, number]; recovery: Recovery };

export type ClassRow = {
  cls: FaultClass | 'none';
  faults: number;
  attempted: number;
  acked: number;
  lost: number;
  duplicated: number;
  unknownResolved: number;
  deliveries: number;
  p50Ms: number | null;
  p99Ms: number | null;
  /** The worst of this class's instances. */
  recovery: { apiMs: number | null; lagMs: number | null; clientsMs: number | null };
};

export const percentile = (sorted: readonly number[], p: number): number | null => {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
};

const firstAtOrAfter = (sorted: readonly number[], t: number): number | undefined => {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return sorted[lo];
};

const windowOf = (f: FaultInstance): [number, number] => [
  f.inject,
  f.recovered ?? (f.heal ?? f.inject) + DEFAULT_WINDOW_AFTER_HEAL_MS,
];

type Deliveries = { t: number[]; seq: number[] };

const indexDeliveries = (ix: HistoryIndex): Map<string, Deliveries> => {
  const out = new Map<string, Deliveries>();
  for (const [d, timeline] of ix.timelines) {
    for (const e of timeline) {
      if (e.k !== 'ev') continue;
      const key = `${d}|${e.conv}`;
      const list = out.get(key) ?? { t: [], seq: [] };
      out.set(key, list);
      list.t.push(e.t);
      list.seq.push(e.seq);
    }
  }
  return out;
};

const recoveryOf = (
  ix: HistoryIndex,
  f: FaultInstance,
  okTimes: readonly number[],
  deliveries: Map<string, Deliveries>,
  opens: readonly number[],
): Recovery => {
  const heal = f.heal ?? f.inject;
  const [from, to] = windowOf(f);
  const firstOk = firstAtOrAfter(okTimes, heal);
  const before = [...ix.samples].reverse().find((s) => s.t <= heal && s.head !== undefined);
  let lagMs: number | null = null;
  if (before?.head) {
    const head = before.head;
    const caught = ix.samples.find(
      (s) =>
        s.t >= heal &&
        s.checkpoints !== undefined &&
        Object.keys(s.checkpoints).length > 0 &&
        Object.values(s.checkpoints).every((p) => p >= head),
    );
    if (caught) lagMs = caught.t - heal;
  }
  let clientsMs: number | null = 0;
  let notCaughtUp = 0;
  for (const [conv, members] of ix.members) {
    const events = ix.streams.get(`conversation-${conv}`) ?? [];
    let target: number | undefined;
    for (let i = events.length - 1; i >= 0; i--) {
      if (Date.parse(events[i]!.at) <= heal) {
        target = events[i]!.rev;
        break;
      }
    }
    if (target === undefined) continue;
    for (const [d, device] of ix.devices) {
      if (!members.has(device.user)) continue;
      if (!memberAtSeq(ix, conv, device.user, target) || !memberAtEnd(ix, conv, device.user)) continue;
      const got = deliveries.get(`${d}|${conv}`);
      const i = got ? got.seq.findIndex((s) => s >= target) : -1;
      if (!got || i < 0) {
        notCaughtUp++;
        continue;
      }
      clientsMs = Math.max(clientsMs ?? 0, got.t[i]! - heal);
    }
  }
  const perSecond = new Map<number, number>();
  for (const t of opens) {
    if (t < from || t > to) continue;
    const second = Math.floor(t / 1000);
    perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
  }
  return {
    apiMs: firstOk === undefined ? null : firstOk - heal,
    lagMs,
    clientsMs: notCaughtUp > 0 && clientsMs === 0 ? null : clientsMs,
    notCaughtUp,
    peakReconnectsPerSecond: Math.max(0, ...perSecond.values()),
  };
};

/** A gateway counter summed over the run: each process's last value (a restarted one counts from 0). */
const counterTotal = (ix: HistoryIndex, name: string): number => {
  const last = new Map<number, number>();
  for (const m of ix.gatewayMetrics) {
    const v = m.values[name];
    if (v !== undefined) last.set(m.pid, v);
  }
  return [...last.values()].reduce((a, b) => a + b, 0);
};

const worst = (values: (number | null)[]): number | null =>
  values.some((v) => v === null) || values.length === 0 ? null : Math.max(...(values as number[]));

export type RecoveryFigures = {
  faults: FaultRow[];
  classes: ClassRow[];
  peakReconnectsPerSecond: number;
  reconnects: number;
  /**
   * Sockets the gateways closed as slow consumers (1013), from their counters (a socket that does not
   * read never sees the close frame: it finds its connection reset when it reads again).
   */
  slowConsumerCloses: number;
  /** Largest resident memory each process of the system reached, bytes. */
  peakRss: Record<string, number>;
  unplannedExits: EntryOf<'proc'>[];
};

export const recoveryFigures = (ix: HistoryIndex, commands: CommandFigures): RecoveryFigures => {
  const okTimes: number[] = [];
  for (const op of ix.ops.values())
    for (const a of op.attempts)
      if (a.outcome?.k === 'ok' && a.invoke.phase === 'run') okTimes.push(a.outcome.t);
  okTimes.sort((a, b) => a - b);
  const opens: number[] = [];
  for (const timeline of ix.timelines.values())
    for (const e of timeline) if (e.k === 'open' && e.n > 1) opens.push(e.t);
  opens.sort((a, b) => a - b);
  const deliveries = indexDeliveries(ix);
  const faults: FaultRow[] = ix.faults.map((f) => ({
    ...f,
    window: windowOf(f),
    recovery: recoveryOf(ix, f, okTimes, deliveries, opens),
  }));

  // Which classes were on when each command was first invoked.
  const classesAt = (t: number): Set<FaultClass | 'none'> => {
    const on = new Set<FaultClass | 'none'>();
    for (const f of faults) if (t >= f.window[0] && t <= f.window[1]) on.add(f.cls);
    if (on.size === 0) on.add('none');
    return on;
  };
  const byMessage = new Map<string, Op>();
  for (const op of ix.ops.values())
    if (op.first.mid) byMessage.set(messageKey(op.first.conv, op.first.mid), op);
  const latencies = new Map<FaultClass | 'none', number[]>();
  for (const timeline of ix.timelines.values()) {
    const seen = new Set<string>();
    for (const e of timeline) {
      if (e.k !== 'ev' || !e.mid) continue;
      const key = `${e.conv}|${e.seq}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const op = byMessage.get(messageKey(e.conv, e.mid));
      if (op?.first.phase !== 'run') continue;
      for (const cls of classesAt(op.first.t)) {
        const list = latencies.get(cls) ?? [];
        latencies.set(cls, list);
        list.push(e.t - op.first.t);
      }
    }
  }
  const rows = new Map<FaultClass | 'none', ClassRow>();
  const row = (cls: FaultClass | 'none'): ClassRow => {
    let r = rows.get(cls);
    if (!r) {
      r = {
        cls,
        faults: faults.filter((f) => f.cls === cls).length,
        attempted: 0,
        acked: 0,
        lost: 0,
        duplicated: 0,
        unknownResolved: 0,
        deliveries: 0,
        p50Ms: null,
        p99Ms: null,
        recovery: { apiMs: null, lagMs: null, clientsMs: null },
      };
      rows.set(cls, r);
    }
    return r;
  };
  for (const op of ix.ops.values()) {
    if (op.first.phase !== 'run') continue;
    for (const cls of classesAt(op.first.t)) {
      const r = row(cls);
      r.attempted++;
      if (commands.acked.has(op.op)) r.acked++;
      if (commands.lost.has(op.op)) r.lost++;
      if (commands.duplicated.has(op.op)) r.duplicated++;
      if (commands.resolved.has(op.op)) r.unknownResolved++;
    }
  }
  for (const [cls, list] of latencies) {
    list.sort((a, b) => a - b);
    const r = row(cls);
    r.deliveries = list.length;
    r.p50Ms = percentile(list, 50);
    r.p99Ms = percentile(list, 99);
  }
  for (const r of rows.values()) {
    const mine = faults.filter((f) => f.cls === r.cls);
    if (mine.length === 0) continue;
    r.recovery = {
      apiMs: worst(mine.map((f) => f.recovery.apiMs)),
      lagMs: worst(mine.map((f) => f.recovery.lagMs)),
      clientsMs: worst(mine.map((f) => f.recovery.clientsMs)),
    };
  }
  const perSecond = new Map<number, number>();
  for (const t of opens) perSecond.set(Math.floor(t / 1000), (perSecond.get(Math.floor(t / 1000)) ?? 0) + 1);
  const order: (FaultClass | 'none')[] = [
    'none',
    'F1',
    'F2',
    'F3',
    'F4',
    'F5',
    'F6',
    'F8',
    'F9',
    'F10',
    'F12',
  ];
  return {
    faults,
    classes: order.filter((c) => rows.has(c)).map((c) => rows.get(c)!),
    peakReconnectsPerSecond: Math.max(0, ...perSecond.values()),
    reconnects: opens.length,
    slowConsumerCloses: counterTotal(ix, 'ws_slow_consumer_closes_total'),
    peakRss: ix.samples.reduce<Record<string, number>>((peak, s) => {
      for (const [name, bytes] of Object.entries(s.rss ?? {})) peak[name] = Math.max(peak[name] ?? 0, bytes);
      return peak;
    }, {}),
    unplannedExits: ix.procs.filter((p) => p.event === 'exit' && !p.planned),
  };
};
