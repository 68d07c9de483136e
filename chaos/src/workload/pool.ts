import { join } from 'node:path';
import { type Child, ipcRequest, spawnTs } from '@chat/processes';
import type { Population } from './population.js';
import type { DeviceCommand, DeviceReply, DeviceSpec, StatusReply, WorkloadSettings } from './protocol.js';

// The run's side of its device processes: starts them, hands each a slice of the devices and of the
// command rate, and talks to all of them at once (one command in flight per process).

export type DevicePool = {
  historyFiles: string[];
  children: Child[];
  send: (cmd: DeviceCommand, timeoutMs?: number) => Promise<DeviceReply[]>;
  status: (heads?: Record<string, number>, left?: string[]) => Promise<StatusReply>;
  finish: () => Promise<void>;
};

export const startDevicePool = async (options: {
  processes: number;
  dir: string;
  population: Population;
  apiUrl: string;
  gatewayUrls: string[];
  jwtSecret: string;
  settings: WorkloadSettings;
  connectConcurrency: number;
}): Promise<DevicePool & { started: { open: number; devices: number; ms: number } }> => {
  const { population } = options;
  const slices: DeviceSpec[][] = Array.from({ length: options.processes }, () => []);
  for (const [i, d] of population.devices.entries()) slices[i % options.processes]!.push(d);
  const members = Object.fromEntries(population.conversations.map((c) => [c.id, c.members]));
  const children = slices.map((_, i) =>
    spawnTs(`devices-${i}`, 'chaos/src/workload/device-process.ts', { ipc: true }),
  );
  const queues = children.map(() => Promise.resolve() as Promise<unknown>);
  const request = (i: number, cmd: DeviceCommand, timeoutMs: number): Promise<DeviceReply> => {
    const next = queues[i]!.then(() => ipcRequest<DeviceReply>(children[i]!, cmd, timeoutMs));
    queues[i] = next.catch(() => undefined);
    return next;
  };
  const send = (cmd: DeviceCommand, timeoutMs = 30_000) =>
    Promise.all(children.map((_, i) => request(i, cmd, timeoutMs)));
  const historyFiles = children.map((_, i) => join(options.dir, `devices-${i}.jsonl`));
  let finished: Promise<void> | undefined;
  const replies = await Promise.all(
    slices.map((devices, i) =>
      request(
        i,
        {
          type: 'start',
          index: i,
          historyFile: historyFiles[i]!,
          apiUrl: options.apiUrl,
          gateways: options.gatewayUrls,
          jwtSecret: options.jwtSecret,
          devices,
          members,
          settings: { ...options.settings, rate: options.settings.rate / options.processes },
          connectConcurrency: options.connectConcurrency,
        },
        180_000,
      ),
    ),
  );
  const started = { open: 0, devices: 0, ms: 0 };
  for (const r of replies) {
    if (r.type !== 'started') continue;
    started.open += r.open;
    started.devices += r.devices;
    started.ms = Math.max(started.ms, r.ms);
  }
  return {
    historyFiles,
    children,
    started,
    send,
    async status(heads, left) {
      const all = (
        await send({ type: 'status', ...(heads ? { heads } : {}), ...(left ? { left } : {}) })
      ).filter((r): r is StatusReply => r.type === 'status');
      return all.reduce<StatusReply>(
        (sum, r) => ({
          type: 'status',
          devices: sum.devices + r.devices,
          open: sum.open + r.open,
          inFlight: sum.inFlight + r.inFlight,
          invoked: sum.invoked + r.invoked,
          skipped: sum.skipped + r.skipped,
          behind: sum.behind + r.behind,
          behindSample: [...sum.behindSample, ...r.behindSample].slice(0, 5),
        }),
        {
          type: 'status',
          devices: 0,
          open: 0,
          inFlight: 0,
          invoked: 0,
          skipped: 0,
          behind: 0,
          behindSample: [],
        },
      );
    },
    finish() {
      finished ??= (async () => {
        await send({ type: 'finish' }, 30_000).catch(() => undefined);
        await Promise.all(children.map((c) => c.stop(5000)));
      })();
      return finished;
    },
  };
};
