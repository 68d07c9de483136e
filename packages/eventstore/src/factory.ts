import type { Logger } from '@chat/platform';
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
};

export const isEsdbUrl = (url: string | undefined): url is string =>
  url !== undefined &&
  (url.startsWith('esdb://') || url.startsWith('esdb+discover://') || url.startsWith('kurrentdb://'));

/** The adapter the environment asks for: EventStoreDB when EVENTSTORE_URL is esdb://…, else Postgres. */
export const createEventStore = (config: EventStoreConfig): EventStore => {
  const logger = config.logger.child({ component: 'eventstore' });
  if (isEsdbUrl(config.eventstoreUrl)) {
    return createEsdbEventStore({ connectionString: config.eventstoreUrl, logger });
  }
  return createPostgresEventStore({
    connectionString: config.databaseUrl,
    logger,
    scavengeIntervalMs: config.scavengeIntervalMs ?? 60_000,
    ...(config.maxConnections ? { maxConnections: config.maxConnections } : {}),
  });
};
