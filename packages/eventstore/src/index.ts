export * from './crypto/data-keys.js';
export * from './crypto/encrypting-store.js';
export * from './delegate.js';
export * from './envelope.js';
export { createEsdbEventStore, type EsdbEventStoreOptions } from './esdb/store.js';
export * from './factory.js';
export * from './linger.js';
export * from './port.js';
export type { GroupCommitOptions } from './postgres/appender.js';
export { type ChannelHandlers, PgListener } from './postgres/listener.js';
export { migrateEventStore, NOTIFY_CHANNEL } from './postgres/schema.js';
export {
  createPostgresEventStore,
  type PostgresEventStore,
  type PostgresEventStoreOptions,
  STORE_SESSION_OPTIONS,
} from './postgres/store.js';
