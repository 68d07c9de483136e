import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentLogDir, REPO_ROOT, runToCompletion, type ServiceName } from '@chat/processes';
import { freePort, type NatsServerProcess, startNatsServer } from '@chat/testkit';
import type { HistoryWriter } from '../history/file.js';
import { initPrivatePostgres, type PrivatePostgres } from '../infra/postgres.js';
import { type FaultProxy, startFaultProxy } from '../infra/proxy.js';
import { Supervisor } from './supervisor.js';

// The whole system under test on infrastructure of the run's own: a private Postgres cluster and
// nats-server (own ports and data), the fault proxy in front of both, and every service as a
// supervised process whose env points at the proxy. NATS runs as in production, under
// infra/nats/auth.conf: one user per service with its allow lists (whose subjects carry the default
// prefix `chat`). Nothing here touches the machine's shared Postgres (5432) or NATS (4222).

export const DATABASE = 'chat';
export const GATEWAYS = ['gw1', 'gw2'] as const;

const NATS_AUTH_CONF = join(REPO_ROOT, 'infra/nats/auth.conf');
/** The users of infra/nats/auth.conf and the variables the server reads their passwords from. */
const NATS_PASSWORD_VARIABLES: Record<ServiceName, string> = {
  'ws-gateway': 'CHAT_NATS_GATEWAY_PASSWORD',
  'command-api': 'CHAT_NATS_COMMAND_API_PASSWORD',
  projector: 'CHAT_NATS_PROJECTOR_PASSWORD',
  notifier: 'CHAT_NATS_NOTIFIER_PASSWORD',
};

export type System = {
  pg: PrivatePostgres;
  nats: NatsServerProcess;
  proxy: FaultProxy;
  supervisor: Supervisor;
  jwtSecret: string;
  /** Straight to the private cluster (the run's own checks; not through the proxy). */
  databaseUrl: string;
  apiUrl: string;
  gatewayUrls: string[];
  /** Stops the services, the proxy, NATS and Postgres; safe to call more than once. */
  stop: () => Promise<void>;
};

export type SystemOptions = {
  dir: string;
  history: HistoryWriter;
  log: (msg: string) => void;
  /** Bytes a gateway queues for one socket before closing it with 1013 (small, so F12 bites in time). */
  gatewayMaxBackpressure: number;
  /** Told how to stop the system as soon as there is something to stop (for Ctrl-C during the start). */
  onStop: (stop: () => Promise<void>) => void;
};

export const startSystem = async (options: SystemOptions): Promise<System> => {
  const { log } = options;
  const [pgPort, pgProxyPort, natsProxyPort, apiPort, projectorPort, notifierPort, ...gwPorts] =
    await Promise.all(Array.from({ length: 6 + GATEWAYS.length }, () => freePort()));
  const pg = await initPrivatePostgres({ dir: join(options.dir, 'postgres'), port: pgPort! });
  // nats-server reads a variable's value as config: a password starting with a letter stays a string.
  const passwords = new Map(
    Object.keys(NATS_PASSWORD_VARIABLES).map((user) => [user, `p${randomBytes(12).toString('hex')}`]),
  );
  const supervisor = new Supervisor(options.history);
  let nats: NatsServerProcess | undefined;
  let proxy: FaultProxy | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await supervisor.stopAll();
    await proxy?.child.stop(2000);
    if (nats) writeFileSync(join(currentLogDir(), 'nats-server.log'), nats.output());
    await nats?.stop();
    await pg.stop();
  };
  options.onStop(stop);
  try {
    await pg.start();
    await pg.createDatabase(DATABASE);
    nats = await startNatsServer({
      args: ['-c', NATS_AUTH_CONF],
      env: Object.fromEntries(
        Object.entries(NATS_PASSWORD_VARIABLES).map(([user, variable]) => [variable, passwords.get(user)!]),
      ),
    });
    log(`private Postgres on :${pgPort} (pid ${pg.pid()}), nats-server on :${nats.port} (pid ${nats.pid()})`);
    proxy = await startFaultProxy([
      { name: 'postgres', listenPort: pgProxyPort!, targetPort: pgPort! },
      { name: 'nats', listenPort: natsProxyPort!, targetPort: nats.port },
    ]);
    const databaseUrl = pg.url(DATABASE);
    await runToCompletion('migrate', 'infra/migrate.ts', { DATABASE_URL: databaseUrl });
    const jwtSecret = `chaos-${randomBytes(16).toString('hex')}`;
    const env = {
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pgProxyPort}/${DATABASE}`,
      NATS_URL: `nats://127.0.0.1:${natsProxyPort}`,
      JWT_SECRET: jwtSecret,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'development',
    };
    const start = (name: string, service: ServiceName, port: number, extra: Record<string, string> = {}) =>
      supervisor.start({
        name,
        service,
        port,
        env: { ...env, NATS_USER: service, NATS_PASSWORD: passwords.get(service)!, ...extra },
        timeoutMs: 120_000,
      });
    // In parallel: each service spends seconds compiling its TypeScript at start.
    await Promise.all([
      start('command-api', 'command-api', apiPort!),
      start('projector', 'projector', projectorPort!, { LEADER_RETRY_MS: '200' }),
      start('notifier', 'notifier', notifierPort!, { LEADER_RETRY_MS: '200' }),
      ...GATEWAYS.map((id, i) =>
        start(id, 'ws-gateway', gwPorts[i]!, {
          GATEWAY_ID: id,
          WS_MAX_BACKPRESSURE: String(options.gatewayMaxBackpressure),
        }),
      ),
    ]);
    log(
      `services ready: ${supervisor
        .names()
        .map((n) => `${n}:${supervisor.port(n)}/pid ${supervisor.pid(n)}`)
        .join(', ')}`,
    );
    return {
      pg,
      nats,
      proxy,
      supervisor,
      jwtSecret,
      databaseUrl,
      apiUrl: `http://127.0.0.1:${apiPort}`,
      gatewayUrls: gwPorts.map((p) => `ws://127.0.0.1:${p}/v1/ws`),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
};
