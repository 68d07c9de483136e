import { natsSubjects } from '@chat/events';
import { createDataKeyStore, createEventStore } from '@chat/eventstore';
import { ConfigError, connectNats, createLogger, nameDatabaseSessions, onShutdown } from '@chat/platform';
import pg from 'pg';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { buildApp } from './app.js';
import { readConfig } from './config.js';

nameDatabaseSessions('command-api');
const config = (() => {
  try {
    return readConfig();
  } catch (err) {
    // A configuration mistake is the operator's to fix: say which variable, without a stack trace.
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
})();
const logger = createLogger('command-api', config.LOG_LEVEL);

const registry = new Registry();
collectDefaultMetrics({ register: registry });
const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: config.DB_POOL_SIZE });
pool.on('error', (err) => logger.warn({ err }, 'postgres pool client error'));
const dataKeys = createDataKeyStore({
  databaseUrl: config.DATABASE_URL,
  master: config.DATA_KEY_MASTER,
  logger,
});
const store = createEventStore({
  dataKeys,
  databaseUrl: config.DATABASE_URL,
  eventstoreUrl: config.EVENTSTORE_URL,
  logger,
  maxConnections: config.DB_POOL_SIZE,
});
const nats = await connectNats(config, 'command-api');

const app = await buildApp({
  config,
  store,
  dataKeys,
  pool,
  nats,
  subjects: natsSubjects(config.NATS_SUBJECT_PREFIX),
  logger,
  clock: { now: () => new Date() },
  registry,
});
await app.listen({ port: config.PORT, host: config.HOST });

onShutdown(logger, async () => {
  await app.close();
  await nats.drain();
  await store.close();
  await pool.end();
});
