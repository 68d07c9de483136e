import { randomUUID } from 'node:crypto';
import { signToken } from '@chat/testkit';
import { now } from '../history/clock.js';
import { HistoryWriter } from '../history/file.js';
import {
  type CommandSpec,
  drawTimeout,
  fullBody,
  httpTransport,
  issue,
  outcomeOfFrame,
  type Transport,
} from './commands.js';
import { Device } from './device.js';
import type { DeviceCommand, DeviceReply, StartCommand, StatusReply, UnresolvedCommand } from './protocol.js';

// A device process: holds its share of the run's sockets and offers its share of the commands on an
// open-loop schedule, driven by the run over IPC. Everything goes to its own history file.

let start: StartCommand | undefined;
let history: HistoryWriter | undefined;
const devices: Device[] = [];
const tokens = new Map<string, string>();
let senders: Device[] = [];
let writing = false;
let writeTimer: NodeJS.Timeout | undefined;
let tickTimer: NodeJS.Timeout | undefined;
let issued = 0;
let skipped = 0;
let inFlight = 0;
let scheduleFrom = 0;
let scheduled = 0;
const unresolved: UnresolvedCommand[] = [];

const reply = (msg: DeviceReply): void => {
  process.send?.(msg);
};
const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)]!;

const wsTransport =
  (device: Device, timeoutsMs: readonly number[]): Transport =>
  (spec, attempt) =>
    new Promise((resolve) => {
      const ref = `${spec.op}:${attempt}`;
      const frame =
        spec.cmd === 'send'
          ? { type: 'send', ref, conversationId: spec.conv, messageId: spec.mid, body: fullBody(spec) }
          : { type: 'read', ref, conversationId: spec.conv, upToSeq: spec.upTo };
      const timer = setTimeout(() => {
        device.forget(ref);
        resolve({ k: 'unknown', reason: 'timeout' });
      }, drawTimeout(timeoutsMs));
      const sent = device.send(frame, (answer) => {
        clearTimeout(timer);
        resolve(outcomeOfFrame(answer));
      });
      if (!sent) {
        clearTimeout(timer);
        resolve({ k: 'unknown', reason: 'socket closed before sending' });
      }
    });

const issueOne = (cmd: StartCommand): void => {
  const device = pick(senders);
  const conv = pick(device.spec.convs);
  const op = `p${cmd.index}.${++issued}`;
  const { settings } = cmd;
  const last = device.positions.get(conv) ?? -1;
  const spec: CommandSpec =
    Math.random() < settings.readShare && last >= 0
      ? { op, cmd: 'read', user: device.spec.user, token: tokens.get(device.spec.user)!, conv, upTo: last }
      : {
          op,
          cmd: 'send',
          user: device.spec.user,
          token: tokens.get(device.spec.user)!,
          conv,
          mid: randomUUID(),
          // A mention makes a notification (canaries are mentioned after they left too: they must get none).
          body:
            Math.random() < settings.mentionShare
              ? `chaos ${op} @${pick((cmd.members[conv] ?? []).filter((u) => u !== device.spec.user)) ?? 'nobody'}`
              : `chaos ${op}`,
        };
  const http = httpTransport(cmd.apiUrl, settings.commandTimeoutsMs);
  const ws = wsTransport(device, settings.commandTimeoutsMs);
  inFlight++;
  void issue(spec, {
    history: history!,
    phase: 'run',
    maxAttempts: settings.maxAttempts,
    maxAgeMs: settings.maxCommandAgeMs,
    transport: () =>
      device.ready && Math.random() < settings.wsShare
        ? { via: 'ws', send: ws }
        : { via: 'http', send: http },
  })
    .then(({ outcome, attempts }) => {
      if (outcome.k === 'ok') return;
      const { token: _token, ...rest } = spec;
      unresolved.push({ ...rest, attempts });
    })
    .finally(() => inFlight--);
};

const schedule = (cmd: StartCommand): void => {
  if (!writing) return;
  const due = Math.floor(((now() - scheduleFrom) * cmd.settings.rate) / 1000);
  // A stalled event loop does not turn into a burst: at most a second's worth at once.
  for (let i = 0; scheduled < due && i < Math.max(1, cmd.settings.rate); i++, scheduled++) {
    if (inFlight >= cmd.settings.maxInFlight || senders.length === 0) skipped++;
    else issueOne(cmd);
  }
  scheduled = Math.max(scheduled, due - cmd.settings.rate);
};

const startDevices = async (cmd: StartCommand): Promise<void> => {
  const started = now();
  start = cmd;
  history = new HistoryWriter(cmd.historyFile);
  for (const u of new Set(cmd.devices.map((d) => d.user))) {
    tokens.set(u, await signToken(u, { secret: cmd.jwtSecret, expiresIn: 6 * 3600 }));
  }
  for (const spec of cmd.devices) {
    const device = new Device({
      spec,
      gateways: () => start!.gateways,
      token: tokens.get(spec.user)!,
      history,
    });
    device.setHeartbeat(cmd.settings.pingEveryMs, cmd.settings.pongTimeoutMs);
    devices.push(device);
  }
  senders = devices.filter((d) => d.spec.role === 'member' && d.spec.convs.length > 0);
  let next = 0;
  const worker = async () => {
    while (next < devices.length) await devices[next++]!.start(20_000);
  };
  await Promise.all(Array.from({ length: Math.max(1, cmd.connectConcurrency) }, worker));
  tickTimer = setInterval(() => {
    const t = now();
    for (const d of devices) d.tick(t);
  }, 1000);
  reply({
    type: 'started',
    open: devices.filter((d) => d.open).length,
    devices: devices.length,
    ms: now() - started,
  });
};

const status = (heads: Record<string, number> | undefined, left: readonly string[]): StatusReply => {
  let behind = 0;
  const behindSample: string[] = [];
  const gone = new Set(left);
  for (const d of devices) {
    if (!heads) break;
    for (const [conv, seq] of d.positions) {
      const head = heads[conv];
      if (head === undefined || seq >= head || gone.has(`${conv}|${d.spec.user}`)) continue;
      behind++;
      if (behindSample.length < 5) behindSample.push(`${d.spec.d} ${conv} ${seq}/${head}`);
    }
  }
  return {
    type: 'status',
    devices: devices.length,
    open: devices.filter((d) => d.open).length,
    inFlight,
    invoked: issued,
    skipped,
    behind,
    behindSample,
  };
};

process.on('message', (cmd: DeviceCommand) => {
  const handle = async (): Promise<void> => {
    switch (cmd.type) {
      case 'start':
        return startDevices(cmd);
      case 'writing':
        writing = cmd.on;
        clearInterval(writeTimer);
        if (cmd.on && start) {
          const s = start;
          scheduleFrom = now();
          scheduled = 0;
          writeTimer = setInterval(() => schedule(s), 20);
        }
        return reply({ type: 'ok' });
      case 'storm':
        for (const d of devices) d.storm(cmd.jitterMs > 0 ? Math.random() * cmd.jitterMs : 0);
        return reply({ type: 'ok' });
      case 'reading':
        for (const d of devices) if (d.spec.role === cmd.role) d.reading(cmd.on);
        return reply({ type: 'ok' });
      case 'status':
        return reply(status(cmd.heads, cmd.left ?? []));
      case 'unresolved':
        return reply({ type: 'unresolved', ops: unresolved });
      case 'finish': {
        writing = false;
        clearInterval(writeTimer);
        clearInterval(tickTimer);
        for (const d of devices) d.finish();
        await new Promise((r) => setTimeout(r, 500));
        for (const d of devices) history?.write({ k: 'frames', t: now(), d: d.spec.d, counts: d.counts });
        const entries = history?.count ?? 0;
        await history?.close();
        return reply({ type: 'finished', entries });
      }
      default: {
        const never: never = cmd;
        throw new Error(`unknown command ${JSON.stringify(never)}`);
      }
    }
  };
  handle().catch((err: unknown) =>
    process.send?.({
      type: 'error',
      message: err instanceof Error ? (err.stack ?? err.message) : String(err),
    }),
  );
});
process.on('disconnect', () => process.exit(0));
