import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import type { ProxyCommand, ProxyMode, ProxyReply, ProxyRoute } from './proxy-protocol.js';

// The run's network nemesis, as a process of its own: a TCP proxy in front of NATS and Postgres (the
// services connect through it; the run's own checks do not). Per route it can delay every chunk,
// stall the traffic (a partition: nothing flows, connections stay open, TCP backpressure builds), and
// reset every open connection. Loopback only; the machine's network is never touched.

const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

type Direction = {
  from: Socket;
  to: Socket;
  queue: { at: number; chunk: Buffer }[];
  queuedBytes: number;
  lastAt: number;
  timer: NodeJS.Timeout | undefined;
  ended: boolean;
};

type Route = ProxyRoute & { mode: ProxyMode; server: Server; pairs: Set<Pair> };
type Pair = { client: Socket; upstream: Socket; directions: Direction[] };

const routes = new Map<string, Route>();

const flush = (route: Route, dir: Direction): void => {
  if (dir.timer) {
    clearTimeout(dir.timer);
    dir.timer = undefined;
  }
  if (route.mode.stalled) return;
  const now = Date.now();
  while (dir.queue.length > 0 && dir.queue[0]!.at <= now) {
    const { chunk } = dir.queue.shift()!;
    dir.queuedBytes -= chunk.length;
    if (!dir.to.destroyed) dir.to.write(chunk);
  }
  if (dir.queue.length > 0) {
    dir.timer = setTimeout(() => flush(route, dir), Math.max(1, dir.queue[0]!.at - now));
    return;
  }
  if (dir.ended && !dir.to.destroyed) dir.to.end();
  if (dir.queuedBytes < MAX_QUEUED_BYTES && dir.from.isPaused() && !route.mode.stalled) dir.from.resume();
};

const forward = (route: Route, from: Socket, to: Socket): Direction => {
  const dir: Direction = { from, to, queue: [], queuedBytes: 0, lastAt: 0, timer: undefined, ended: false };
  from.on('data', (chunk: Buffer) => {
    const { delayMs, jitterMs } = route.mode;
    // Order is kept: a chunk never leaves before the one read before it.
    const at = Math.max(dir.lastAt, Date.now() + delayMs + Math.random() * jitterMs);
    dir.lastAt = at;
    dir.queue.push({ at, chunk });
    dir.queuedBytes += chunk.length;
    if (route.mode.stalled || dir.queuedBytes >= MAX_QUEUED_BYTES || to.writableNeedDrain) from.pause();
    flush(route, dir);
  });
  to.on('drain', () => flush(route, dir));
  from.on('end', () => {
    dir.ended = true;
    flush(route, dir);
  });
  return dir;
};

const accept = (route: Route, client: Socket): void => {
  client.pause();
  const upstream = tcpConnect({ host: '127.0.0.1', port: route.targetPort });
  const pair: Pair = { client, upstream, directions: [] };
  route.pairs.add(pair);
  const close = () => {
    route.pairs.delete(pair);
    for (const d of pair.directions) if (d.timer) clearTimeout(d.timer);
    client.destroy();
    upstream.destroy();
  };
  for (const s of [client, upstream]) {
    s.setNoDelay(true);
    s.on('error', close);
    s.on('close', close);
  }
  upstream.once('connect', () => {
    pair.directions = [forward(route, client, upstream), forward(route, upstream, client)];
    if (!route.mode.stalled) client.resume();
  });
};

const listen = (spec: ProxyRoute): Promise<void> =>
  new Promise((resolve, reject) => {
    const route: Route = {
      ...spec,
      mode: { delayMs: 0, jitterMs: 0, stalled: false },
      server: createServer((socket) => accept(route, socket)),
      pairs: new Set(),
    };
    routes.set(spec.name, route);
    route.server.once('error', reject);
    route.server.listen(spec.listenPort, '127.0.0.1', () => resolve());
  });

const setMode = (route: Route, mode: Partial<ProxyMode>): void => {
  route.mode = { ...route.mode, ...mode };
  for (const pair of route.pairs) {
    for (const dir of pair.directions) {
      if (route.mode.stalled) dir.from.pause();
      else flush(route, dir);
    }
  }
};

const cut = (route: Route): void => {
  for (const pair of [...route.pairs]) {
    for (const s of [pair.client, pair.upstream]) {
      // An RST, as a middlebox dropping the connection would send; a socket still connecting just goes.
      try {
        s.resetAndDestroy();
      } catch {
        s.destroy();
      }
    }
    route.pairs.delete(pair);
  }
};

const reply = (msg: ProxyReply | { type: 'error'; message: string }): void => {
  process.send?.(msg);
};
const connections = () => Object.fromEntries([...routes.values()].map((r) => [r.name, r.pairs.size]));

process.on('message', (cmd: ProxyCommand) => {
  const handle = async (): Promise<void> => {
    switch (cmd.type) {
      case 'listen':
        for (const r of cmd.routes) await listen(r);
        break;
      case 'mode':
        for (const name of cmd.routes) setMode(routes.get(name)!, cmd.mode);
        break;
      case 'cut':
        for (const name of cmd.routes) cut(routes.get(name)!);
        break;
      case 'status':
        break;
      default: {
        const never: never = cmd;
        throw new Error(`unknown command ${JSON.stringify(never)}`);
      }
    }
    reply({ type: 'ok', connections: connections() });
  };
  handle().catch((err: unknown) =>
    reply({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
  );
});
process.on('disconnect', () => process.exit(0));
