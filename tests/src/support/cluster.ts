import { randomUUID } from 'node:crypto';
import { createReadModelDb, migrateReadModels } from '@chat/db';
import { migrateEventStore } from '@chat/eventstore';
import {
  createTestDatabase,
  freePort,
  natsUrl,
  type ServiceProcess,
  signToken,
  startService,
  TEST_JWT_SECRET,
  type TestDatabase,
  testSubjectPrefix,
} from '@chat/testkit';
import pg from 'pg';

export type GatewayHandle = { name: string; port: number; url: string; proc: ServiceProcess };

export type Cluster = {
  db: TestDatabase;
  prefix: string;
  natsUrl: string;
  api: string;
  commandApi: ServiceProcess;
  projector: ServiceProcess;
  gateways: GatewayHandle[];
  env: Record<string, string>;
  startGateway(name: string, env?: Record<string, string>): Promise<GatewayHandle>;
  /** Calls the command-api as `userId`; throws on a non-2xx answer. */
  http<T = Record<string, unknown>>(userId: string, method: string, path: string, body?: unknown): Promise<T>;
  stop(): Promise<void>;
};

/**
 * The live path as it runs in production, as real processes: command-api, projector (projection +
 * relay) and `gateways` ws-gateway processes, on this test file's own database and subject prefix.
 */
export const startCluster = async (options: {
  label: string;
  gateways: number;
  natsUrl?: string;
  /** Subject prefix (default: one of the test file's own). */
  prefix?: string;
  gatewayEnv?: Record<string, string>;
  commandApiEnv?: Record<string, string>;
  projectorEnv?: Record<string, string>;
}): Promise<Cluster> => {
  const db = await createTestDatabase(options.label);
  await migrateEventStore(db.url);
  const pool = new pg.Pool({ connectionString: db.url, max: 1 });
  await migrateReadModels(pool);
  await pool.end();
  const prefix = options.prefix ?? testSubjectPrefix();
  const nats = options.natsUrl ?? natsUrl();
  const env = {
    DATABASE_URL: db.url,
    NATS_URL: nats,
    NATS_SUBJECT_PREFIX: prefix,
    JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
  };
  const started: ServiceProcess[] = [];
  const stopAll = async () => {
    await Promise.all(started.map((p) => p.stop(3000)));
  };
  try {
    const apiPort = await freePort();
    const commandApi = await startService({
      name: 'command-api',
      entry: 'services/command-api',
      timeoutMs: 60_000,
      env: {
        ...env,
        PORT: String(apiPort),
        HOST: '127.0.0.1',
        RATE_LIMIT_COMMANDS: '0',
        ...options.commandApiEnv,
      },
      ready: { url: `http://127.0.0.1:${apiPort}/healthz` },
    });
    started.push(commandApi);
    const projectorPort = await freePort();
    const projector = await startService({
      name: 'projector',
      entry: 'services/projector',
      timeoutMs: 60_000,
      env: {
        ...env,
        PORT: String(projectorPort),
        HOST: '127.0.0.1',
        LEADER_RETRY_MS: '200',
        ...options.projectorEnv,
      },
      ready: { url: `http://127.0.0.1:${projectorPort}/healthz` },
    });
    started.push(projector);
    const startGateway = async (
      name: string,
      extraEnv: Record<string, string> = {},
    ): Promise<GatewayHandle> => {
      const port = await freePort();
      const proc = await startService({
        name,
        entry: 'services/ws-gateway',
        timeoutMs: 60_000,
        env: {
          ...env,
          PORT: String(port),
          HOST: '127.0.0.1',
          GATEWAY_ID: name,
          ...options.gatewayEnv,
          ...extraEnv,
        },
        ready: { url: `http://127.0.0.1:${port}/readyz` },
      });
      started.push(proc);
      return { name, port, url: `ws://127.0.0.1:${port}/v1/ws`, proc };
    };
    const gateways: GatewayHandle[] = [];
    for (let i = 1; i <= options.gateways; i++) gateways.push(await startGateway(`gw${i}`));
    const api = `http://127.0.0.1:${apiPort}`;
    return {
      db,
      prefix,
      natsUrl: nats,
      api,
      commandApi,
      projector,
      gateways,
      env,
      startGateway,
      async http<T>(userId: string, method: string, path: string, body?: unknown): Promise<T> {
        const res = await fetch(`${api}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${await signToken(userId)}`,
            ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        const text = await res.text();
        if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
        return (text ? JSON.parse(text) : {}) as T;
      },
      async stop() {
        await stopAll();
        await db.drop();
      },
    };
  } catch (err) {
    await stopAll();
    await db.drop();
    throw err;
  }
};

export const createGroup = async (cluster: Cluster, creator: string, members: string[]): Promise<string> => {
  const conversationId = randomUUID();
  await cluster.http(creator, 'POST', '/v1/conversations', {
    conversationId,
    kind: 'group',
    title: 'group',
    members,
  });
  return conversationId;
};

/** Sends `count` messages with a few requests in flight; resolves when all are acknowledged. */
export const sendMany = async (
  cluster: Cluster,
  sender: string,
  conversationId: string,
  count: number,
  options: { concurrency?: number; body?: string; onSent?: (sent: number) => void | Promise<void> } = {},
): Promise<void> => {
  let next = 0;
  let sent = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const messageId = randomUUID();
      // Retried with the same messageId while a dependency restarts: the API makes that idempotent.
      for (let attempt = 0; ; attempt++) {
        try {
          await cluster.http(sender, 'POST', `/v1/conversations/${conversationId}/messages`, {
            messageId,
            body: options.body ?? `message ${i}`,
          });
          break;
        } catch (err) {
          if (attempt > 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await options.onSent?.(++sent);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 8 }, worker));
};

export const sendMessage = (cluster: Cluster, sender: string, conversationId: string, body: string) =>
  cluster.http<{ seq: number; messageId: string }>(
    sender,
    'POST',
    `/v1/conversations/${conversationId}/messages`,
    {
      messageId: randomUUID(),
      body,
    },
  );

export { createReadModelDb };
