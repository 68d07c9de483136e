// Before uWebSockets.js loads: it reads its header limit from the environment then.
import './uws-env.js';
import uWS from 'uWebSockets.js';
import { randomBytes } from 'node:crypto';
import { createReadModelDb } from '@chat/db';
import { natsSubjects } from '@chat/events';
import { createDataKeyStore, createEventStore, type EventStore } from '@chat/eventstore';
import { connectNats, createTokenVerifier, type Logger } from '@chat/platform';
import type { NatsConnection } from 'nats';
import pg from 'pg';
import { FLOOD_CLOSE_AFTER_MS } from './client/flood.js';
import { CommandRequests } from './client/requests.js';
import type { GatewayConfig } from './config.js';
import { Hub } from './hub/hub.js';
import { monotonicMs } from './hub/types.js';
import { readModelMembership } from './membership/source.js';
import { MemoryReducer } from './memory/reducer.js';
import { createGatewayMetrics } from './metrics/metrics.js';
import { ClusterPresence } from './presence/presence.js';
import { createServer } from './server.js';

export type Gateway = {
  port: number;
  gatewayId: string;
  hub: Hub;
  /** Graceful: stop listening, close sockets with 1001, settle presence, drain NATS. */
  stop(): Promise<void>;
};

const SWEEP_MS = 100;

/** Dependencies a caller may hand in instead of having them built from the config (tests). */
export type GatewayDeps = {
  /** The event store; the gateway then leaves closing it to the caller. */
  store?: EventStore;
};

/** Builds and starts one gateway process's worth of parts from its config. */
export const startGateway = async (
  config: GatewayConfig,
  logger: Logger,
  deps: GatewayDeps = {},
): Promise<Gateway> => {
  const gatewayId = config.GATEWAY_ID ?? `gw-${randomBytes(4).toString('hex')}`;
  const subjects = natsSubjects(config.NATS_SUBJECT_PREFIX);
  const metrics = createGatewayMetrics();
  const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 10 });
  pool.on('error', (err) => logger.warn({ err }, 'idle Postgres client failed'));
  const db = createReadModelDb(pool);
  let store: EventStore | undefined;
  let nats: NatsConnection | undefined;
  try {
    store =
      deps.store ??
      createEventStore({
        dataKeys: createDataKeyStore({
          databaseUrl: config.DATABASE_URL,
          master: config.DATA_KEY_MASTER,
          logger,
        }),
        databaseUrl: config.DATABASE_URL,
        eventstoreUrl: config.EVENTSTORE_URL || undefined,
        logger,
        scavengeIntervalMs: 0,
      });
    // Reconnect forever: a NATS restart must not end the gateway; feeds refill from the store.
    nats = await connectNats(config, `ws-gateway ${gatewayId}`, {
      reconnectTimeWait: 250,
      pingInterval: 10_000,
      // nats.js otherwise builds an Error (with a stack) per request to keep async traces: about 5% of
      // the gateway's busy time in the B2 profile, for stacks nobody reads.
      noAsyncTraces: true,
    });
  } catch (err) {
    if (!deps.store) await store?.close();
    await pool.end();
    throw err;
  }
  const nc = nats;
  const eventStore = store;
  const membership = readModelMembership(db, eventStore);

  const app = uWS.App();
  const hub = new Hub({
    app,
    store: eventStore,
    nats: nc,
    subjects,
    membership,
    metrics,
    logger: logger.child({ component: 'hub' }),
    maxSocketsPerUser: config.WS_MAX_SOCKETS_PER_USER,
    hintGraceMs: config.LIVE_HINT_GRACE_MS,
  });
  const presence = new ClusterPresence({
    nats: nc,
    subjects,
    gatewayId,
    membership,
    logger,
    metrics,
    deliver: (userId, conversationIds, text) => hub.presenceChanged(userId, conversationIds, text),
  });
  await presence.start();
  hub.presence = presence;

  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'reconnect') {
        logger.info('NATS reconnected; refilling conversations from the event store');
        hub.refillAll();
      } else if (status.type === 'disconnect') {
        logger.warn('NATS disconnected');
      }
    }
  })();

  const requests = new CommandRequests(nc, config.COMMAND_TIMEOUT_MS);
  const server = createServer({
    app,
    hub,
    requests,
    subjects,
    verifyToken: createTokenVerifier({
      secret: config.JWT_SECRET,
      issuer: config.JWT_ISSUER,
      audience: config.JWT_AUDIENCE,
      jwksUrl: config.JWKS_URL,
    }),
    allowedOrigins: config.ALLOWED_ORIGINS,
    metrics,
    registry: metrics.registry,
    logger,
    gatewayId,
    maxBackpressure: config.WS_MAX_BACKPRESSURE,
    idleTimeoutSeconds: config.WS_IDLE_TIMEOUT,
    flood: {
      ratePerSecond: config.WS_RATE_PER_SECOND,
      burst: config.WS_RATE_BURST,
      pingRatePerSecond: config.WS_PING_RATE_PER_SECOND,
      pingBurst: config.WS_PING_BURST,
      closeAfterMs: FLOOD_CLOSE_AFTER_MS,
    },
    onConnect: () => reducer.noteConnect(monotonicMs()),
    readiness: async () => {
      const check = async (fn: () => Promise<unknown>) =>
        fn().then(
          () => 'ok',
          (err: unknown) => (err instanceof Error ? err.message : String(err)),
        );
      const [natsOk, storeOk, dbOk] = await Promise.all([
        check(async () => {
          if (nc.isClosed()) throw new Error('closed');
          await nc.flush();
        }),
        check(() => eventStore.ping()),
        check(() => pool.query('SELECT 1')),
      ]);
      return { nats: natsOk, eventstore: storeOk, database: dbOk };
    },
  });

  // One interval for every socket-related deadline (no per-socket timers): the pre-resume hold, forwarded
  // commands' timeouts and the memory reducer each tick; slow consumers and token expiry every fifth tick, as a pass over every
  // socket was a visible share of an idle gateway's CPU at every other one (uWS's hard limit at 8× the
  // soft one covers the time between passes); the NATS round trip every ten seconds.
  let tick = 0;
  const reducer = new MemoryReducer(
    { minConnects: config.WS_GC_AFTER_CONNECTS, quietMs: 1000, minIntervalMs: 1000 },
    logger.child({ component: 'memory' }),
  );
  const sweeper = setInterval(() => {
    const now = monotonicMs();
    hub.sweepPending(now);
    requests.sweep(performance.now());
    reducer.tick(now);
    if (++tick % 5 === 0) hub.sweepSockets(Math.floor(Date.now() / 1000), config.WS_MAX_BACKPRESSURE);
    if (tick % 100 === 0) {
      nc.rtt().then(
        (ms) => metrics.natsRtt.set(ms / 1000),
        () => {},
      );
    }
  }, SWEEP_MS);

  const port = await server.listen(config.HOST, config.PORT);
  logger.info({ port, gatewayId }, 'ws-gateway listening');

  return {
    port,
    gatewayId,
    hub,
    async stop() {
      clearInterval(sweeper);
      server.stop();
      requests.stop();
      await presence.stop();
      await nc.drain().catch(() => {});
      if (!deps.store) await eventStore.close();
      await pool.end();
    },
  };
};
