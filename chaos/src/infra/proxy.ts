import { type Child, ipcRequest, spawnTs } from '@chat/processes';
import type { ProxyCommand, ProxyMode, ProxyReply, ProxyRoute } from './proxy-protocol.js';

export type FaultProxy = {
  child: Child;
  set: (routes: string[], mode: Partial<ProxyMode>) => Promise<ProxyReply>;
  cut: (routes: string[]) => Promise<ProxyReply>;
  /** Back to passing everything through at once. */
  heal: () => Promise<ProxyReply>;
  status: () => Promise<ProxyReply>;
};

/** Starts the fault proxy process listening on every route's port. */
export const startFaultProxy = async (routes: ProxyRoute[]): Promise<FaultProxy> => {
  const child = spawnTs('fault-proxy', 'chaos/src/infra/fault-proxy.ts', { ipc: true });
  // One command at a time over the channel: the nemesis may overlap faults.
  let queue: Promise<unknown> = Promise.resolve();
  const request = (cmd: ProxyCommand): Promise<ProxyReply> => {
    const next = queue.then(() => ipcRequest<ProxyReply>(child, cmd, 10_000));
    queue = next.catch(() => undefined);
    return next;
  };
  await request({ type: 'listen', routes });
  const names = routes.map((r) => r.name);
  return {
    child,
    set: (on, mode) => request({ type: 'mode', routes: on, mode }),
    cut: (on) => request({ type: 'cut', routes: on }),
    heal: () => request({ type: 'mode', routes: names, mode: { delayMs: 0, jitterMs: 0, stalled: false } }),
    status: () => request({ type: 'status' }),
  };
};
