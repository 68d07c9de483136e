import { shareLog } from '@chat/consumer';
import { migrateReadModels } from '@chat/db';
import { natsSubjects } from '@chat/events';
import { createDataKeyStore, createEventStore } from '@chat/eventstore';
import {
  connectNats,
  createLogger,
  livePublisher,
  nameDatabaseSessions,
  onShutdown,
  startOpsServer,
} from '@chat/platform';
import { createProjector, PROJECTED_STREAMS, registerRebuildProgress } from '@chat/projection';
import { createRelay, RELAYED_STREAMS } from '@chat/relay';
import pg from 'pg';
import { Registry } from 'prom-client';
import { loadProjectorConfig } from './config.js';

nameDatabaseSessions('projector');
const config = loadProjectorConfig();
const logger = createLogger('projector', config.LOG_LEVEL);
const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 10 });
// An idle client dying (Postgres restart, admin termination) must be logged, not crash the process.
pool.on('error', (err) => logger.warn({ err }, 'idle Postgres client failed'));
const store = createEventStore({
  dataKeys: createDataKeyStore({ databaseUrl: config.DATABASE_URL, master: config.DATA_KEY_MASTER, logger }),
  databaseUrl: config.DATABASE_URL,
  eventstoreUrl: config.EVENTSTORE_URL || undefined,
  logger,
});
const nats = await connectNats(config, 'projector');
const subjects = natsSubjects(config.NATS_SUBJECT_PREFIX);
const publisher = livePublisher(config);
const encoder = new TextEncoder();
const registry = new Registry();

if (config.MIGRATE_ON_START) await migrateReadModels(pool);

// The projection and the relay tail the same log: one read (and one decryption) of each page feeds both.
const log = config.RELAY_ENABLED ? shareLog(store, { filters: [PROJECTED_STREAMS, RELAYED_STREAMS] }) : store;
const consumers = [
  createProjector({
    store: log,
    pool,
    logger,
    registry,
    batchSize: config.PROJECTOR_BATCH_SIZE,
    lingerMs: config.PROJECTOR_LINGER_MS,
    leaderRetryMs: config.LEADER_RETRY_MS,
    publish: (userId, message) =>
      nats.publish(subjects.user(userId), encoder.encode(JSON.stringify(message))),
  }),
  ...(config.RELAY_ENABLED
    ? [
        createRelay({
          store: log,
          nats,
          subjects,
          pool,
          logger,
          registry,
          leaderRetryMs: config.LEADER_RETRY_MS,
          conversationEventsFrom: publisher,
          lingerMs: config.RELAY_LINGER_MS ?? (publisher === 'command-api' ? 20 : 0),
        }),
      ]
    : []),
];
registerRebuildProgress(registry, pool, store);

const stopping = new AbortController();
const running = Promise.all(consumers.map((c) => c.run(stopping.signal)));

const ops = await startOpsServer({
  port: config.PORT,
  host: config.HOST,
  registry,
  checks: {
    postgres: async () => {
      await pool.query('SELECT 1');
    },
    eventstore: () => store.ping(),
    nats: async () => {
      if (nats.isClosed()) throw new Error('connection closed');
      await nats.flush();
    },
  },
});
logger.info({ port: ops.port }, 'projector started');

onShutdown(logger, async () => {
  stopping.abort();
  await ops.close();
  await running;
  await nats.drain();
  await store.close();
  await pool.end();
});
