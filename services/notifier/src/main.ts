import { natsSubjects } from '@chat/events';
import { createDataKeyStore, createEventStore } from '@chat/eventstore';
import { connectNats, createLogger, nameDatabaseSessions, onShutdown, startOpsServer } from '@chat/platform';
import pg from 'pg';
import { collectDefaultMetrics } from 'prom-client';
import { loadNotifierConfig } from './config.js';
import { createNotifierService } from './service.js';

nameDatabaseSessions('notifier');
const config = loadNotifierConfig();
const logger = createLogger('notifier', config.LOG_LEVEL);
const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 10 });
// An idle client dying (Postgres restart, admin termination) must be logged, not crash the process.
pool.on('error', (err) => logger.warn({ err }, 'idle Postgres client failed'));
const store = createEventStore({
  dataKeys: createDataKeyStore({ databaseUrl: config.DATABASE_URL, master: config.DATA_KEY_MASTER, logger }),
  databaseUrl: config.DATABASE_URL,
  eventstoreUrl: config.EVENTSTORE_URL || undefined,
  logger,
});
const nats = await connectNats(config, 'notifier');
const encoder = new TextEncoder();

const service = createNotifierService({
  config,
  pool,
  store,
  logger,
  subjects: natsSubjects(config.NATS_SUBJECT_PREFIX),
  publish: (subject, message) => nats.publish(subject, encoder.encode(JSON.stringify(message))),
});
collectDefaultMetrics({ register: service.registry });
service.start();

const ops = await startOpsServer({
  port: config.PORT,
  host: config.HOST,
  registry: service.registry,
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
logger.info({ port: ops.port, webhook: Boolean(config.WEBHOOK_URL) }, 'notifier started');

onShutdown(logger, async () => {
  await ops.close();
  await service.stop();
  await nats.drain();
  await store.close();
  await pool.end();
});
