import { type Logger, parseDataKeyMaster } from '@chat/platform';
import { createPgDataKeyStore, type DataKeyStore } from './crypto/data-keys.js';
import { EncryptingEventStore } from './crypto/encrypting-store.js';
import { createEsdbEventStore } from './esdb/store.js';
import type { EventStore } from './port.js';
import { createPostgresEventStore } from './postgres/store.js';

export type EventStoreConfig = {
  /** Postgres holding schema `es`; used unless `eventstoreUrl` selects EventStoreDB. */
  databaseUrl: string;
  /** `esdb://…` or `kurrentdb://…` selects EventStoreDB / KurrentDB (EVENTSTORE_URL). */
  eventstoreUrl?: string | undefined;
  logger: Logger;
  /** Postgres only: how often this process runs the max-age scavenger (default 60 s; 0 disables). */
  scavengeIntervalMs?: number;
  /** Postgres only: pool size. */
  maxConnections?: number;
  /**
   * The users' data keys: personal fields are encrypted on append and decrypted on every read
   * (crypto-shredding, README "Erasure"). Closed with the store. Omitted: events are stored as given.
   */
  dataKeys?: DataKeyStore;
};

export const isEsdbUrl = (url: string | undefined): url is string =>
  url !== undefined &&
  (url.startsWith('esdb://') || url.startsWith('esdb+discover://') || url.startsWith('kurrentdb://'));

/** The adapter the environment asks for: EventStoreDB when EVENTSTORE_URL is esdb://…, else Postgres. */
export const createEventStore = (config: EventStoreConfig): EventStore => {
  const store = createAdapter(config);
  return config.dataKeys ? new EncryptingEventStore(store, config.dataKeys) : store;
};

const createAdapter = (config: EventStoreConfig): EventStore => {
  const logger = config.logger.child({ component: 'eventstore' });
  if (isEsdbUrl(config.eventstoreUrl)) {
    return createEsdbEventStore({ connectionString: config.eventstoreUrl, logger });
  }
  // The key store's LISTEN connection, when it is on the same database, carries the log's wake-ups too.
  const keysListener = config.dataKeys?.listener;
  return createPostgresEventStore({
    connectionString: config.databaseUrl,
    logger,
    ...(keysListener?.connectionString === config.databaseUrl ? { listener: keysListener } : {}),
    scavengeIntervalMs: config.scavengeIntervalMs ?? 60_000,
    ...(config.maxConnections ? { maxConnections: config.maxConnections } : {}),
  });
};

/**
 * The users' data keys in Postgres (`keys` schema, `migrateDataKeys` of @chat/db; also with EventStoreDB
 * holding the events), wrapped under `master` (DATA_KEY_MASTER: base64 or hex of 32 bytes).
 */
export const createDataKeyStore = (config: {
  databaseUrl: string;
  master: string;
  logger: Logger;
}): DataKeyStore => {
  const master = parseDataKeyMaster(config.master);
  if (!master) throw new RangeError('DATA_KEY_MASTER must be 32 bytes as base64 or hex');
  return createPgDataKeyStore({
    connectionString: config.databaseUrl,
    master,
    logger: config.logger.child({ component: 'data-keys' }),
  });
};
