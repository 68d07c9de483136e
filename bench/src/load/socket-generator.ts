import { randomUUID } from 'node:crypto';
import { rssBytes } from '@chat/processes';
import { signToken } from '@chat/testkit';
import WebSocket from 'ws';
import { encodeHistogram, type Histogram, newHistogram, nowMicros } from '../histogram.js';
import type {
  ClosedLoopCommand,
  ConnectCommand,
  GeneratorCommand,
  GeneratorReply,
  RunCommand,
  RunReply,
} from './protocol.js';
import { field, type Wire, wireFor } from './wire.js';

// A WebSocket load generator process: opens its share of the sockets, sends `send` frames on an open-
// loop schedule (or closed loop for the command path) and measures send → delivered from the
// timestamp carried in each message body. Driven by the orchestrator over IPC. Every kind of target
// (this system's gateway, bare uWS, Socket.IO) goes through the same code; load/wire.ts holds the only
// differences: URL, handshake, send frame, reading of incoming frames.

type Conn = {
  ws: WebSocket;
  wire: Wire;
  lastSeq: Map<string, number>;
  /** Messages of this run seen on a socket whose events carry no seq (duplicates found by message). */
  seen: Set<string>;
};

const conns: Conn[] = [];
const pending = new Map<string, { sentAt: number; done?: (ok: boolean) => void }>();
let marker = '\u0000';
/** Makes this generator's message keys unique among all generators of a run. */
const tag = process.pid.toString(36);
let deliveries: Histogram = newHistogram();
let acks: Histogram = newHistogram();
const zeroCounters = () => ({
  received: 0,
  frames: 0,
  duplicates: 0,
  gaps: 0,
  unsequenced: 0,
  acked: 0,
  ackErrors: 0,
  closed: 0,
});
let counters = zeroCounters();
let firstAckError: string | null = null;

const reply = (msg: GeneratorReply) => process.send?.(msg);

/** The message's key in its body: `<scheduled µs>|<generator>.<k>`, right after the run's marker. */
const messageKey = (s: string, at: number): string => {
  const first = s.indexOf('|', at);
  const second = first < 0 ? -1 : s.indexOf('|', first + 1);
  return s.slice(at, second < 0 ? undefined : second);
};

const onEvent = (conn: Conn, s: string): void => {
  const seqText = field(s, '"seq":');
  if (seqText !== undefined) {
    const conversationId = field(s, '"conversationId":"');
    const seq = Number(seqText);
    if (conversationId !== undefined && Number.isInteger(seq)) {
      const last = conn.lastSeq.get(conversationId);
      if (last !== undefined) {
        if (seq <= last) counters.duplicates++;
        else if (seq > last + 1) counters.gaps++;
      }
      if (last === undefined || seq > last) conn.lastSeq.set(conversationId, seq);
    }
  }
  const at = s.indexOf(marker);
  if (at < 0) return;
  counters.received++;
  deliveries.recordValue(Math.max(1, nowMicros() - Number(field(s, marker, at))));
  if (seqText === undefined) {
    counters.unsequenced++;
    const key = messageKey(s, at + marker.length);
    if (conn.seen.has(key)) counters.duplicates++;
    else conn.seen.add(key);
  }
};

const onReply = (ref: string, ok: boolean, s: string): void => {
  const p = pending.get(ref);
  if (!p) return;
  pending.delete(ref);
  if (ok) {
    counters.acked++;
    acks.recordValue(Math.max(1, nowMicros() - p.sentAt));
  } else {
    counters.ackErrors++;
    firstAckError ??= s.slice(0, 300);
  }
  p.done?.(ok);
};

const onFrame = (conn: Conn, data: Buffer): void => {
  counters.frames++;
  const s = data.toString();
  const frame = conn.wire.classify(s);
  switch (frame.kind) {
    case 'event':
      onEvent(conn, s);
      return;
    case 'reply':
      onReply(frame.ref, frame.ok, s);
      return;
    case 'answer':
      conn.ws.send(frame.frame);
      return;
    case 'other':
      return;
    default: {
      const never: never = frame;
      throw new Error(`unhandled frame ${JSON.stringify(never)}`);
    }
  }
};

/**
 * Each socket's token, signed before the connect phase starts: a client reconnecting after a gateway
 * restart holds its token already, so signing one (jose, asynchronous, most of this generator's CPU per
 * connect) is no part of a connect and must not slow the generator's connect rate down.
 */
const tokensFor = (cmd: ConnectCommand): Promise<(string | null)[]> =>
  Promise.all(
    cmd.sockets.map((spec) =>
      wireFor(cmd.targets[spec.target ?? 0]!.kind).needsToken
        ? signToken(spec.userId, { secret: cmd.jwtSecret, expiresIn: 6 * 3600 })
        : null,
    ),
  );

const connectOne = async (cmd: ConnectCommand, index: number, token: string | null): Promise<void> => {
  const spec = cmd.sockets[index]!;
  const target = cmd.targets[spec.target ?? 0]!;
  const wire = wireFor(target.kind);
  const ws = new WebSocket(wire.url(target, spec, token), {
    perMessageDeflate: false,
    handshakeTimeout: cmd.timeoutMs,
    ...(spec.localAddress ? { localAddress: spec.localAddress } : {}),
  });
  const conn: Conn = { ws, wire, lastSeq: new Map(), seen: new Set() };
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(new Error('handshake not complete in time')), cmd.timeoutMs);
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.off('message', onHandshake);
      ws.terminate();
      reject(err);
    };
    const onHandshake = (data: Buffer) => {
      try {
        const step = wire.handshake(data.toString(), token);
        if (step.answer !== undefined) ws.send(step.answer);
        if (!step.ready) return;
      } catch (err) {
        return fail(err instanceof Error ? err : new Error(String(err)));
      }
      settled = true;
      clearTimeout(timer);
      // Switch handlers synchronously: a frame right behind the last handshake frame is not lost.
      ws.off('message', onHandshake);
      ws.on('message', (d: Buffer) => onFrame(conn, d));
      resolve();
    };
    ws.on('message', onHandshake);
    // Kept for the socket's life: after the handshake an error only ends the socket (counted on close).
    ws.on('error', (err) => fail(err));
    ws.once('unexpected-response', (_req, res) => fail(new Error(`upgrade answered ${res.statusCode}`)));
  });
  ws.on('close', () => counters.closed++);
  conns[index] = conn;
};

const connect = async (cmd: ConnectCommand): Promise<void> => {
  const tokens = await tokensFor(cmd);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  let ok = 0;
  let failed = 0;
  let firstError: string | null = null;
  const stopAt = started + (cmd.budgetMs ?? Number.POSITIVE_INFINITY);
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= cmd.sockets.length || performance.now() > stopAt) return;
      try {
        await connectOne(cmd, i, tokens[i] ?? null);
        ok++;
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.concurrency) }, worker));
  // Sockets never tried because the connect budget ran out count as failed.
  const untried = cmd.sockets.length - ok - failed;
  if (untried > 0) {
    failed += untried;
    firstError ??= `${untried} sockets not tried: connect budget of ${cmd.budgetMs} ms spent`;
  }
  const cpu = process.cpuUsage(cpuBefore);
  reply({
    type: 'connected',
    ok,
    failed,
    ms: performance.now() - started,
    cpuMs: (cpu.user + cpu.system) / 1000,
    firstError,
  });
};

const resetCounters = (runId: string) => {
  marker = `bench|${runId}|`;
  deliveries = newHistogram();
  acks = newHistogram();
  counters = zeroCounters();
  firstAckError = null;
  pending.clear();
  for (const c of conns) c?.seen.clear();
};

const sendFrame = (socket: number, conversationId: string, body: string, ref: string): boolean => {
  const conn = conns[socket];
  if (!conn || conn.ws.readyState !== WebSocket.OPEN || conn.ws.bufferedAmount > 1 << 20) return false;
  conn.ws.send(conn.wire.encodeSend(ref, { conversationId, messageId: randomUUID(), body }));
  return true;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const finish = (sent: number, skipped: number, maxScheduleLagMs: number): RunReply => ({
  type: 'ran',
  sent,
  skipped,
  maxScheduleLagMs: Math.round(maxScheduleLagMs * 10) / 10,
  ...counters,
  firstAckError,
  deliveryHistogram: encodeHistogram(deliveries),
  ackHistogram: encodeHistogram(acks),
});

let lastRun = { sent: 0, skipped: 0, maxLag: 0 };

const run = async (cmd: RunCommand): Promise<void> => {
  resetCounters(cmd.runId);
  const pad = 'x'.repeat(cmd.bodyPadding);
  const intervalUs = 1_000_000 / cmd.rate;
  const t0 = nowMicros() + 20_000;
  const total = Math.floor((cmd.rate * cmd.durationMs) / 1000);
  let k = 0;
  let skipped = 0;
  let maxLag = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = nowMicros();
      while (k < total) {
        const due = t0 + Math.round(k * intervalUs);
        if (due > now) break;
        maxLag = Math.max(maxLag, (now - due) / 1000);
        const p = cmd.plan[k % cmd.plan.length]!;
        const ref = `${k}`;
        // The body carries the scheduled send time, so a late sender cannot hide latency.
        pending.set(ref, { sentAt: due });
        if (!sendFrame(p.socket, p.conversationId, `${marker}${due}|${tag}.${k}|${pad}`, ref)) {
          pending.delete(ref);
          skipped++;
        }
        k++;
      }
      if (k >= total) return resolve();
      const wait = (t0 + Math.round(k * intervalUs) - nowMicros()) / 1000;
      setTimeout(tick, Math.max(0, Math.floor(wait)));
    };
    tick();
  });
  lastRun = { sent: total - skipped, skipped, maxLag };
  reply({ type: 'sent' });
};

const closedLoop = async (cmd: ClosedLoopCommand): Promise<void> => {
  resetCounters(cmd.runId);
  const deadline = performance.now() + cmd.durationMs;
  let k = 0;
  let sent = 0;
  let skipped = 0;
  const worker = async () => {
    while (performance.now() < deadline) {
      const n = k++;
      const p = cmd.plan[n % cmd.plan.length]!;
      const ref = `${n}`;
      const ok = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(ref);
          resolve(false);
        }, 10_000);
        pending.set(ref, {
          sentAt: nowMicros(),
          done: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        });
        if (!sendFrame(p.socket, p.conversationId, `${marker}${nowMicros()}|${tag}.${n}|`, ref)) {
          clearTimeout(timer);
          pending.delete(ref);
          skipped++;
          resolve(false);
        }
      });
      sent++;
      if (!ok) await sleep(5);
    }
  };
  await Promise.all(Array.from({ length: cmd.concurrency }, worker));
  reply(finish(sent - skipped, skipped, 0));
};

process.on('message', (cmd: GeneratorCommand) => {
  const handle = async () => {
    switch (cmd.type) {
      case 'connect':
        return connect(cmd);
      case 'run':
        return run(cmd);
      case 'closedLoop':
        return closedLoop(cmd);
      case 'progress':
        return reply({
          type: 'progress',
          acked: counters.acked,
          ackErrors: counters.ackErrors,
          pending: pending.size,
          received: counters.received,
          duplicates: counters.duplicates,
        });
      case 'finish':
        return reply(finish(lastRun.sent, lastRun.skipped, lastRun.maxLag));
      case 'stats':
        return reply({
          type: 'stats',
          open: conns.filter((c) => c?.ws.readyState === WebSocket.OPEN).length,
          rss: rssBytes(process.pid) ?? 0,
        });
      case 'close':
        for (const c of conns) c?.ws.terminate();
        setTimeout(() => process.exit(0), 100);
        return;
    }
  };
  handle().catch((err: unknown) =>
    reply({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
