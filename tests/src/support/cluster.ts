import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createReadModelDb, migrateReadModels } from '@chat/db';
import { createPostgresEventStore, migrateEventStore } from '@chat/eventstore';
import {
  createTestDatabase,
  type DatabaseTemplate,
  freePort,
  natsUrl,
  type ServiceProcess,
  signToken,
  startService,
  startTogether,
  TEST_JWT_SECRET,
  type TestDatabase,
  type TokenOptions,
  testSubjectPrefix,
} from '@chat/testkit';
import pg from 'pg';

/**
 * How long one service may take to answer its readiness probe. Started side by side on a shared 2-core
 * host they share its CPU: each may take as long as all of them one after the other did. A service that
 * exits fails at once; this only bounds one that hangs (the e2e hook timeout is 120 s as well).
 */
const START_TIMEOUT_MS = 120_000;

export type GatewayHandle = { name: string; port: number; url: string; proc: ServiceProcess };

export type Cluster = {
  db: TestDatabase;
  prefix: string;
  natsUrl: string;
  api: string;
  commandApi: ServiceProcess;
  projector: ServiceProcess;
  /** Started when `options.notifier` is set. */
  notifier: ServiceProcess | undefined;
  /** Ops ports of the projector and (when started) the notifier, for `/healthz`. */
  opsUrls: { projector: string; notifier?: string };
  gateways: GatewayHandle[];
  env: Record<string, string>;
  /** Starts a gateway; `port` to bring one back where it was (a restart after a crash). */
  startGateway(name: string, env?: Record<string, string>, port?: number): Promise<GatewayHandle>;
  /** A valid token of `userId` for this cluster (with its issuer and audience, when configured). */
  token(userId: string, options?: TokenOptions): Promise<string>;
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
  /** Also start the notifier (after every schema's migrations, as `pnpm migrate` runs them). */
  notifier?: boolean;
  /** `JWT_ISSUER` / `JWT_AUDIENCE` of every service; `token()` and `http()` sign with them. */
  tokenClaims?: { issuer: string; audience: string };
  /** The built web client for the command-api to serve at `/`; its page connects to the first gateway. */
  webRoot?: string;
}): Promise<Cluster> => {
  // A copy of a database migrated once per test run (testkit's templates), not migrations per file.
  const db = await createTestDatabase(options.label, {
    template: options.notifier ? EVERY_SCHEMA : LIVE_PATH_SCHEMA,
  });
  const prefix = options.prefix ?? testSubjectPrefix();
  const nats = options.natsUrl ?? natsUrl();
  const env = {
    DATABASE_URL: db.url,
    NATS_URL: nats,
    NATS_SUBJECT_PREFIX: prefix,
    JWT_SECRET: TEST_JWT_SECRET,
    LOG_LEVEL: 'warn',
    NODE_ENV: 'test',
    ...(options.tokenClaims
      ? { JWT_ISSUER: options.tokenClaims.issuer, JWT_AUDIENCE: options.tokenClaims.audience }
      : {}),
  };
  const token = (userId: string, tokenOptions: TokenOptions = {}) =>
    signToken(userId, { ...options.tokenClaims, ...tokenOptions });
  const started: ServiceProcess[] = [];
  const stopAll = async () => {
    await Promise.all(started.map((p) => p.stop(3000)));
  };
  try {
    const apiPort = await freePort();
    const startCommandApi = async (web: Record<string, string>) => {
      const proc = await startService({
        name: 'command-api',
        entry: 'services/command-api',
        timeoutMs: START_TIMEOUT_MS,
        env: {
          ...env,
          PORT: String(apiPort),
          HOST: '127.0.0.1',
          RATE_LIMIT_COMMANDS: '0',
          ...web,
          ...options.commandApiEnv,
        },
        ready: { url: `http://127.0.0.1:${apiPort}/healthz` },
      });
      started.push(proc);
      return proc;
    };
    const projectorPort = await freePort();
    const startProjector = async () => {
      const proc = await startService({
        name: 'projector',
        entry: 'services/projector',
        timeoutMs: START_TIMEOUT_MS,
        env: {
          ...env,
          PORT: String(projectorPort),
          HOST: '127.0.0.1',
          LEADER_RETRY_MS: '200',
          ...options.projectorEnv,
        },
        ready: { url: `http://127.0.0.1:${projectorPort}/healthz` },
      });
      started.push(proc);
      return proc;
    };
    const notifierPort = options.notifier ? await freePort() : undefined;
    const notifierUrl = notifierPort === undefined ? undefined : `http://127.0.0.1:${notifierPort}`;
    const startNotifier = async () => {
      if (notifierPort === undefined) return undefined;
      const proc = await startService({
        name: 'notifier',
        entry: 'services/notifier',
        timeoutMs: START_TIMEOUT_MS,
        env: { ...env, PORT: String(notifierPort), HOST: '127.0.0.1', LEADER_RETRY_MS: '200' },
        ready: { url: `${notifierUrl}/readyz` },
      });
      started.push(proc);
      return proc;
    };
    const startGateway = async (
      name: string,
      extraEnv: Record<string, string> = {},
      fixedPort?: number,
    ): Promise<GatewayHandle> => {
      const port = fixedPort ?? (await freePort());
      const proc = await startService({
        name,
        entry: 'services/ws-gateway',
        timeoutMs: START_TIMEOUT_MS,
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
    const startGateways = (): Promise<GatewayHandle[]> =>
      startTogether(...Array.from({ length: options.gateways }, (_, i) => () => startGateway(`gw${i + 1}`)));
    let commandApi: ServiceProcess;
    let projector: ServiceProcess;
    let notifier: ServiceProcess | undefined;
    let gateways: GatewayHandle[];
    if (options.webRoot) {
      // Serving the web client, the command-api must know the gateway's port: it starts after the
      // gateways then (a port picked long before it is listened on could be taken in between).
      [projector, notifier, gateways] = await startTogether(startProjector, startNotifier, startGateways);
      commandApi = await startCommandApi({
        WEB_ROOT: options.webRoot,
        WEB_GATEWAY_URL: `ws://{host}:${gateways[0]?.port}/v1/ws`,
      });
    } else {
      [commandApi, projector, notifier, gateways] = await startTogether(
        () => startCommandApi({}),
        startProjector,
        startNotifier,
        startGateways,
      );
    }
    const api = `http://127.0.0.1:${apiPort}`;
    return {
      db,
      prefix,
      natsUrl: nats,
      api,
      commandApi,
      projector,
      notifier,
      opsUrls: {
        projector: `http://127.0.0.1:${projectorPort}`,
        ...(notifierUrl ? { notifier: notifierUrl } : {}),
      },
      gateways,
      env,
      startGateway,
      token,
      async http<T>(userId: string, method: string, path: string, body?: unknown): Promise<T> {
        const res = await fetch(`${api}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${await token(userId)}`,
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

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** The event store and the read models: what command-api, projector and gateways use. */
const LIVE_PATH_SCHEMA: DatabaseTemplate = {
  key: 'livepath',
  migrate: async (databaseUrl) => {
    await migrateEventStore(databaseUrl);
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    try {
      await migrateReadModels(pool);
    } finally {
      await pool.end();
    }
  },
};

/** Every schema the system owns, migrated by the one script that knows them all (`pnpm migrate`). */
const EVERY_SCHEMA: DatabaseTemplate = { key: 'every', migrate: (url) => migrateAll(url) };

const migrateAll = (databaseUrl: string) =>
  new Promise<void>((resolveMigrate, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'infra/migrate.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      output += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolveMigrate() : reject(new Error(`pnpm migrate exited with ${code}:\n${output}`)),
    );
  });

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
  options: {
    concurrency?: number;
    body?: string;
    /** After each acknowledgement: how many so far, and the answer (its `seq`). */
    onSent?: (sent: number, answer: { seq: number }) => void | Promise<void>;
  } = {},
): Promise<void> => {
  let next = 0;
  let sent = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const messageId = randomUUID();
      // Retried with the same messageId while a dependency restarts: the API makes that idempotent.
      let answer: { seq: number };
      for (let attempt = 0; ; attempt++) {
        try {
          answer = await cluster.http<{ seq: number }>(
            sender,
            'POST',
            `/v1/conversations/${conversationId}/messages`,
            { messageId, body: options.body ?? `message ${i}` },
          );
          break;
        } catch (err) {
          if (attempt > 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      await options.onSent?.(++sent, answer);
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

/**
 * A message stored the way a writer that died between its commit and its publish leaves it: in the log,
 * never published to NATS by the command-api (LIVE_PUBLISH_FROM). Only the relay's heads make gateways
 * read it. `afterSeq`: the conversation's last seq (the append's expected revision).
 */
export const storeUnpublishedMessage = async (
  cluster: Cluster,
  sender: string,
  conversationId: string,
  body: string,
  afterSeq: number,
): Promise<{ seq: number }> => {
  const store = createPostgresEventStore({ connectionString: cluster.db.url });
  try {
    const event = {
      id: randomUUID(),
      type: 'MessageSent',
      data: {
        conversationId,
        messageId: randomUUID(),
        senderId: sender,
        body,
        replyTo: null,
        sentAt: new Date().toISOString(),
      },
      metadata: { userId: sender, correlationId: randomUUID(), causationId: null, schemaVersion: 1 },
    };
    const { nextExpectedRevision } = await store.append(`conversation-${conversationId}`, [event], afterSeq);
    return { seq: nextExpectedRevision };
  } finally {
    await store.close();
  }
};

export { createReadModelDb };
