import { randomUUID } from 'node:crypto';
import { startService, TEST_JWT_SECRET } from '@chat/testkit';

/**
 * The command-api as the command-path benches run it: its own process on `port`, a fresh NATS subject
 * prefix, warnings only. `BENCH_NODE_OPTIONS` are given to its `node` as arguments (NODE_OPTIONS does not
 * take `--cpu-prof`), e.g. `BENCH_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=/tmp/prof"` to profile it under
 * load.
 */
export const startBenchCommandApi = (databaseUrl: string, port: number, env: Record<string, string> = {}) =>
  startService({
    name: 'command-api',
    entry: 'services/command-api',
    env: {
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      JWT_SECRET: TEST_JWT_SECRET,
      NATS_SUBJECT_PREFIX: `bench_${randomUUID().slice(0, 8)}`,
      LOG_LEVEL: 'warn',
      ...env,
    },
    nodeArgs: process.env.BENCH_NODE_OPTIONS?.split(/\s+/).filter((a) => a.length > 0) ?? [],
    ready: { url: `http://127.0.0.1:${port}/readyz` },
  });
