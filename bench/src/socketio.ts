import type { Child } from '@chat/processes';
import { type CpuGroup, processTree } from '@chat/processes';
import { createClient } from 'redis';
import { startBenchServer } from './bare.js';
import type { Population } from './fixtures.js';
import type { Target } from './load/protocol.js';
import { ensureRedisServer, type PrivateRedis, startPrivateRedis } from './redis.js';
import { membershipKey } from './socketio-contract.js';

// The Socket.IO + Redis reference: a private redis-server and `processes` Socket.IO server processes
// (bench/socketio-server.ts) sharing it through @socket.io/redis-adapter, each on its own free port.

export type SocketIoReference = {
  servers: Child[];
  redis: PrivateRedis;
  targets: Target[];
  /** One CPU group per server process, and Redis. */
  groups: CpuGroup[];
  /** The server processes (for RSS per socket; Redis holds no per-socket state). */
  serverPids: () => number[];
  stop: () => Promise<void>;
};

/** Every member's conversations as one Redis set per user, read by the servers on connect. */
const seedMemberships = async (url: string, population: Population): Promise<void> => {
  const client = createClient({ url });
  await client.connect();
  try {
    const byUser = new Map<string, string[]>();
    for (const c of population.conversations)
      for (const m of c.members) byUser.set(m, [...(byUser.get(m) ?? []), c.conversationId]);
    const multi = client.multi();
    for (const [user, ids] of byUser) multi.sAdd(membershipKey(user), ids);
    await multi.exec();
  } finally {
    await client.quit();
  }
};

export const startSocketIoReference = async (options: {
  population: Population;
  jwtSecret: string;
  processes?: number;
  log?: (msg: string) => void;
}): Promise<SocketIoReference> => {
  ensureRedisServer(options.log);
  const redis = await startPrivateRedis('socketio-redis');
  const servers: Child[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
  };
  try {
    await seedMemberships(redis.url, options.population);
    const names = Array.from({ length: options.processes ?? 2 }, (_, i) => `socketio-${'abcdefgh'[i]}`);
    const started = await Promise.allSettled(
      names.map((name) =>
        startBenchServer(name, 'bench/socketio-server.ts', {
          REDIS_URL: redis.url,
          JWT_SECRET: options.jwtSecret,
          SERVER_ID: name,
        }),
      ),
    );
    for (const s of started) if (s.status === 'fulfilled') servers.push(s.value.child);
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    const ports = started.map((s) => (s.status === 'fulfilled' ? s.value.port : 0));
    return {
      servers,
      redis,
      targets: ports.map((port) => ({ kind: 'socketio', url: `ws://127.0.0.1:${port}` })),
      groups: [
        ...servers.map((s) => ({ name: s.name, pids: () => processTree(s.pid) })),
        { name: 'redis', pids: () => processTree(redis.child.pid) },
      ],
      serverPids: () => servers.flatMap((s) => processTree(s.pid)),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
};
