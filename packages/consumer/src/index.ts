export {
  type CheckpointRow,
  deleteCheckpoint,
  listCheckpoints,
  readCheckpoint,
  saveCheckpoint,
  saveCheckpointSql,
} from './checkpoints.js';
export { runConsumer } from './consumer.js';
export { describeError, EventRejectedError, isTransient, storableText } from './failures.js';
export { CONSUMERS_SCHEMA, carryOverCheckpoints, migrateConsumers } from './migrations.js';
export type { AfterEffectsOptions, ConsumerOptions, InTransactionOptions } from './options.js';
export {
  listQuarantine,
  type QuarantinedEvent,
  quarantineSize,
  type RetryOutcome,
  replaceQuarantine,
  requestRetry,
  retryOutcomes,
} from './quarantine.js';
export { type SharedLogOptions, type SharedLogStats, shareLog } from './shared-log.js';
export { transaction } from './transaction.js';
export { writeBehind } from './write-behind.js';
