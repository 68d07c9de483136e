import { createReadModelDb, migrateReadModels, READ_MODEL_SCHEMA, readCheckpoint } from '@chat/db';
import { natsSubjects } from '@chat/events';
import { createEventStore } from '@chat/eventstore';
import { connectNats, createLogger, onShutdown, runAsLeader, startOpsServer } from '@chat/platform';
import pg from 'pg';
import { Gauge, Registry } from 'prom-client';
import { loadProjectorConfig } from './config.js';
import { createProjectionMetrics } from './projection/metrics.js';
import { createProjector, PROJECTED_STREAMS } from './projection/projector.js';
import { LAG_COUNT_CAP, registerRebuildProgress } from './projection/rebuild-progress.js';
import { createRelay } from './relay/index.js';

const config = loadProjectorConfig();
const logger = createLogger('projector', config.LOG_LEVEL);
const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 10 });
// An idle client dying (Postgres restart, admin termination) must be logged, not crash the process.
pool.on('error', (err) => logger.warn({ err }, 'idle Postgres client failed'));
const store = createEventStore({
  databaseUrl: config.DATABASE_URL,
  eventstoreUrl: config.EVENTSTORE_URL || undefined,
  logger,
});
const nats = await connectNats(config, 'projector');
const subjects = natsSubjects(config.NATS_SUBJECT_PREFIX);
const encoder = new TextEncoder();
const registry = new Registry();
const metrics = createProjectionMetrics(registry);
const db = createReadModelDb(pool);

if (config.MIGRATE_ON_START) await migrateReadModels(pool, READ_MODEL_SCHEMA);

const projector = createProjector({
  store,
  db,
  logger,
  metrics,
  batchSize: config.PROJECTOR_BATCH_SIZE,
  lingerMs: config.PROJECTOR_LINGER_MS,
  publish: (userId, message) => nats.publish(subjects.user(userId), encoder.encode(JSON.stringify(message))),
});
registerRebuildProgress(registry, pool, store);
new Gauge({
  name: 'projector_lag_events',
  help: `Events stored but not yet applied to the read models (capped at ${LAG_COUNT_CAP})`,
  registers: [registry],
  async collect() {
    const from = await readCheckpoint(db);
    const behind = await store.readAll({
      fromPosition: from,
      maxCount: LAG_COUNT_CAP,
      filter: PROJECTED_STREAMS,
    });
    this.set(behind.length);
  },
});

const stopping = new AbortController();
const leaders: Promise<void>[] = [
  runAsLeader({
    pool,
    lockName: 'projection:read_models',
    logger,
    signal: stopping.signal,
    retryMs: config.LEADER_RETRY_MS,
    run: (lost) => projector.run(lost),
  }),
];
if (config.RELAY_ENABLED) {
  const relay = createRelay({ store, nats, subjects, pool, logger, registry });
  leaders.push(
    runAsLeader({
      pool,
      lockName: 'relay',
      logger,
      signal: stopping.signal,
      retryMs: config.LEADER_RETRY_MS,
      run: (lost) => relay.run(lost),
    }),
  );
}

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
  await Promise.all(leaders);
  await nats.drain();
  await store.close();
  await pool.end();
});
