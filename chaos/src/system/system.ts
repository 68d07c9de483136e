import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { runToCompletion, type ServiceName } from '@chat/processes';
import { freePort } from '@chat/testkit';
import type { HistoryWriter } from '../history/file.js';
import { type PrivateNats, privateNats } from '../infra/nats.js';
import { initPrivatePostgres, type PrivatePostgres } from '../infra/postgres.js';
import { type FaultProxy, startFaultProxy } from '../infra/proxy.js';
import { Supervisor } from './supervisor.js';

// The whole system under test on infrastructure of the run's own: a private Postgres cluster and
// nats-server (own ports, own data under the run's temp dir), the fault proxy in front of both, and
// every service as a supervised process whose env points at the proxy. Nothing here touches the
// machine's shared Postgres (5432) or NATS (4222).

export const DATABASE = 'chat';
export const GATEWAYS = ['gw1', 'gw2'] as const;
export const SUBJECT_PREFIX = 'chaos';

export type System = {
  pg: PrivatePostgres;
  nats: PrivateNats;
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
  const [pgPort, natsPort, pgProxyPort, natsProxyPort, apiPort, projectorPort, notifierPort, ...gwPorts] =
    await Promise.all(Array.from({ length: 7 + GATEWAYS.length }, () => freePort()));
  const pg = await initPrivatePostgres({ dir: join(options.dir, 'postgres'), port: pgPort! });
  const nats = privateNats({ dir: join(options.dir, 'nats'), port: natsPort! });
  const supervisor = new Supervisor(options.history);
  let proxy: FaultProxy | undefined;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await supervisor.stopAll();
    await proxy?.child.stop(2000);
    await nats.stop();
    await pg.stop();
  };
  options.onStop(stop);
  try {
    await pg.start();
    await pg.createDatabase(DATABASE);
    await nats.start();
    log(
      `private Postgres on :${pgPort} (pid ${pg.pid()}), nats-server on :${natsPort} (pid ${nats.current()?.pid})`,
    );
    proxy = await startFaultProxy([
      { name: 'postgres', listenPort: pgProxyPort!, targetPort: pgPort! },
      { name: 'nats', listenPort: natsProxyPort!, targetPort: natsPort! },
    ]);
    const databaseUrl = pg.url(DATABASE);
    await runToCompletion('migrate', 'infra/migrate.ts', { DATABASE_URL: databaseUrl });
    const jwtSecret = `chaos-${randomBytes(16).toString('hex')}`;
    const env = {
      DATABASE_URL: `postgres://postgres@127.0.0.1:${pgProxyPort}/${DATABASE}`,
      NATS_URL: `nats://127.0.0.1:${natsProxyPort}`,
      NATS_SUBJECT_PREFIX: SUBJECT_PREFIX,
      JWT_SECRET: jwtSecret,
      LOG_LEVEL: 'warn',
      NODE_ENV: 'development',
    };
    const start = (name: string, service: ServiceName, port: number, extra: Record<string, string> = {}) =>
      supervisor.start({ name, service, port, env: { ...env, ...extra }, timeoutMs: 120_000 });
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
