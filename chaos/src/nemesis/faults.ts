import { sleep } from '@chat/retry';
import pg from 'pg';
import { now } from '../history/clock.js';
import type { HistoryWriter } from '../history/file.js';
import type { FaultClass } from '../history/types.js';
import type { Sampler } from '../system/sampler.js';
import type { System } from '../system/system.js';
import type { DevicePool } from '../workload/pool.js';

// What the nemesis can do, and how each fault is undone. Every fault records `inject` when it starts
// and `heal` when the nemesis undoes it; the step it belongs to records `recovered`.

export type FaultSpec =
  /** F1–F4: SIGKILL of a service; the supervisor starts it again after `downMs` (0: at once). */
  | { kind: 'kill'; service: string; downMs: number }
  /** F5: SIGKILL of nats-server, started again after `downMs`. */
  | { kind: 'nats-kill'; downMs: number }
  /** F5: SIGSTOP of nats-server for `downMs` (longer than the clients' timeouts), then SIGCONT. */
  | { kind: 'nats-freeze'; downMs: number }
  /** F6: `pg_ctl stop -m immediate`, started again after `downMs`. */
  | { kind: 'pg-immediate'; downMs: number }
  /** F8: every chunk through the proxy delayed. */
  | { kind: 'net-delay'; routes: string[]; delayMs: number; jitterMs: number; forMs: number }
  /** F8: nothing flows (connections stay open), then either flows again or every connection is reset. */
  | { kind: 'net-stall'; routes: string[]; forMs: number; thenCut: boolean }
  /** F8: every open connection reset at once. */
  | { kind: 'net-cut'; routes: string[] }
  /**
   * F9: a session takes a transaction id and waits `holdMs` before committing while load goes on;
   * F10: the same left idle in transaction for long (120 s in the default profile).
   */
  | { kind: 'xid'; cls: 'F9' | 'F10'; database: string; holdMs: number }
  /** F12: the slow devices stop reading while the hot conversation bursts, for `forMs`. */
  | { kind: 'slow-readers'; messages: number; padding: number; forMs: number }
  /** F12: every socket closed by its client at once; each reconnects after uniform [0, jitterMs]. */
  | { kind: 'storm'; jitterMs: number };

export const faultClass = (spec: FaultSpec): FaultClass => {
  switch (spec.kind) {
    case 'kill':
      return spec.service === 'command-api'
        ? 'F1'
        : spec.service === 'projector'
          ? 'F2'
          : spec.service === 'notifier'
            ? 'F3'
            : 'F4';
    case 'nats-kill':
    case 'nats-freeze':
      return 'F5';
    case 'pg-immediate':
      return 'F6';
    case 'net-delay':
    case 'net-stall':
    case 'net-cut':
      return 'F8';
    case 'xid':
      return spec.cls;
    case 'slow-readers':
    case 'storm':
      return 'F12';
    default: {
      const never: never = spec;
      throw new Error(`unknown fault ${JSON.stringify(never)}`);
    }
  }
};

export const describeFault = (spec: FaultSpec): string => {
  switch (spec.kind) {
    case 'kill':
      return `SIGKILL ${spec.service}${spec.downMs ? `, down ${spec.downMs / 1000} s` : ''}`;
    case 'nats-kill':
      return `SIGKILL nats-server, down ${spec.downMs / 1000} s`;
    case 'nats-freeze':
      return `SIGSTOP nats-server ${spec.downMs / 1000} s`;
    case 'pg-immediate':
      return `pg_ctl stop -m immediate, down ${spec.downMs / 1000} s`;
    case 'net-delay':
      return `proxy delays ${spec.routes.join('+')} ${spec.delayMs}+${spec.jitterMs} ms for ${spec.forMs / 1000} s`;
    case 'net-stall':
      return `proxy stalls ${spec.routes.join('+')} ${spec.forMs / 1000} s, then ${spec.thenCut ? 'resets' : 'resumes'}`;
    case 'net-cut':
      return `proxy resets every ${spec.routes.join('+')} connection`;
    case 'xid':
      return `transaction holding an xid ${spec.holdMs / 1000} s (database ${spec.database})`;
    case 'slow-readers':
      return `slow devices stop reading ${spec.forMs / 1000} s, hot burst of ${spec.messages}`;
    case 'storm':
      return `reconnect storm of every socket, ${spec.jitterMs ? `jitter ${spec.jitterMs / 1000} s` : 'no jitter'}`;
    default: {
      const never: never = spec;
      throw new Error(`unknown fault ${JSON.stringify(never)}`);
    }
  }
};

export type NemesisContext = {
  system: System;
  devices: DevicePool;
  sampler: Sampler;
  history: HistoryWriter;
  log: (msg: string) => void;
  /** Sends `messages` into the hot conversation (recorded commands), `padding` emoji each. */
  hotBurst: (messages: number, padding: number) => Promise<void>;
  /** Whether the projector's checkpoint is behind the log head right now (it has a batch to apply). */
  projectorBehind: () => Promise<boolean>;
};

/** Holds a transaction id on a session of its own until `holdMs` passed; errors end it early. */
const holdXid = async (url: string, holdMs: number): Promise<string> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('BEGIN');
    const { rows } = await client.query<{ xid: string }>('SELECT pg_current_xact_id()::text AS xid');
    await sleep(holdMs);
    await client.query('COMMIT');
    return `xid ${rows[0]?.xid}`;
  } catch (err) {
    return `ended early: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    await client.end().catch(() => {});
  }
};

/** The projector is mid-batch when its checkpoint is behind the head: wait a moment for that. */
const projectorBusy = async (ctx: NemesisContext): Promise<boolean> => {
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    if (await ctx.projectorBehind().catch(() => false)) return true;
    await sleep(10);
  }
  return false;
};

/** Injects one fault and heals it; resolves after the heal. */
export const runFault = async (ctx: NemesisContext, id: string, spec: FaultSpec): Promise<void> => {
  const { system, history } = ctx;
  const cls = faultClass(spec);
  const name = describeFault(spec);
  const record = (phase: 'inject' | 'heal', detail?: string) =>
    history.write({ k: 'fault', t: now(), id, cls, name, phase, ...(detail ? { detail } : {}) });
  ctx.log(`${id} ${cls} ${name}`);
  switch (spec.kind) {
    case 'kill': {
      const busy = spec.service === 'projector' ? await projectorBusy(ctx) : undefined;
      const pid = system.supervisor.pid(spec.service);
      record('inject', `pid ${pid}${busy === undefined ? '' : busy ? ', mid-batch' : ', idle'}`);
      await system.supervisor.kill(spec.service, { hold: spec.downMs > 0 });
      if (spec.downMs > 0) {
        await sleep(spec.downMs);
        await system.supervisor.release(spec.service);
      }
      record('heal');
      return;
    }
    case 'nats-kill':
      record('inject', `pid ${system.nats.pid()}`);
      await system.nats.kill();
      await sleep(spec.downMs);
      await system.nats.start();
      record('heal', `pid ${system.nats.pid()}`);
      return;
    case 'nats-freeze':
      record('inject', `pid ${system.nats.pid()}`);
      system.nats.freeze();
      await sleep(spec.downMs);
      system.nats.thaw();
      record('heal');
      return;
    case 'pg-immediate':
      record('inject', `postmaster ${system.pg.pid()}`);
      await system.pg.stopImmediately();
      await sleep(spec.downMs);
      await system.pg.start();
      record('heal', `postmaster ${system.pg.pid()}`);
      return;
    case 'net-delay':
      await system.proxy.set(spec.routes, { delayMs: spec.delayMs, jitterMs: spec.jitterMs });
      record('inject');
      await sleep(spec.forMs);
      await system.proxy.set(spec.routes, { delayMs: 0, jitterMs: 0 });
      record('heal');
      return;
    case 'net-stall': {
      const status = await system.proxy.set(spec.routes, { stalled: true });
      record('inject', `connections ${JSON.stringify(status.connections)}`);
      await sleep(spec.forMs);
      if (spec.thenCut) await system.proxy.cut(spec.routes);
      await system.proxy.set(spec.routes, { stalled: false });
      record('heal');
      return;
    }
    case 'net-cut': {
      const status = await system.proxy.cut(spec.routes);
      record('inject', `connections left ${JSON.stringify(status.connections)}`);
      record('heal');
      return;
    }
    case 'xid': {
      record('inject');
      const detail = await holdXid(system.pg.url(spec.database), spec.holdMs);
      record('heal', detail);
      return;
    }
    case 'slow-readers': {
      const started = Date.now();
      await ctx.devices.send({ type: 'reading', role: 'slow', on: false });
      record('inject');
      await ctx.hotBurst(spec.messages, spec.padding);
      await sleep(Math.max(0, spec.forMs - (Date.now() - started)));
      await ctx.devices.send({ type: 'reading', role: 'slow', on: true });
      record('heal');
      return;
    }
    case 'storm':
      record('inject');
      await ctx.devices.send({ type: 'storm', jitterMs: spec.jitterMs });
      record('heal');
      return;
    default: {
      const never: never = spec;
      throw new Error(`unknown fault ${JSON.stringify(never)}`);
    }
  }
};

/** Undoes whatever may still be on after an interrupted step: the system whole again. */
export const healEverything = async (ctx: NemesisContext): Promise<void> => {
  const { system } = ctx;
  await system.proxy.heal().catch(() => undefined);
  system.nats.thaw();
  if (system.nats.pid() === undefined) await system.nats.start();
  if (system.pg.pid() === undefined) await system.pg.start();
  for (const name of system.supervisor.names()) await system.supervisor.release(name);
  await ctx.devices.send({ type: 'reading', role: 'slow', on: true }).catch(() => undefined);
};
