// `pnpm migrate`: creates or upgrades every schema the system owns, in dependency order. Idempotent and
// safe to run while services are up; run by `npm start` before the services start (not by the services).
import { migrateConsumers } from '@chat/consumer';
import { migrateDataKeys, migrateReadModels } from '@chat/db';
import { migrateEventStore } from '@chat/eventstore';
import { migrateNotifier } from '@chat/notifications';
import { baseEnv, createLogger, loadConfig } from '@chat/platform';
import pg from 'pg';
import { z } from 'zod';

const config = loadConfig(
  z.object({ DATABASE_URL: baseEnv.DATABASE_URL, EVENTSTORE_URL: baseEnv.EVENTSTORE_URL }),
);
const logger = createLogger('migrate');
const pool = new pg.Pool({ connectionString: config.DATABASE_URL, max: 2 });
try {
  if (config.EVENTSTORE_URL)
    logger.info('events live in EventStoreDB; skipping the Postgres event store schema');
  else await migrateEventStore(pool);
  // Consumers' checkpoints and quarantine first: the read-model and notifier steps move their old
  // checkpoint tables into it.
  await migrateConsumers(pool);
  await migrateReadModels(pool);
  await migrateDataKeys(pool);
  await migrateNotifier(pool);
  logger.info('migrations applied');
} catch (err) {
  logger.error({ err }, 'migration failed');
  process.exitCode = 1;
} finally {
  await pool.end();
}
