export { type NotifierConfig, notifierEnv } from './config.js';
export { DELIVERY_ID_HEADER, SIGNATURE_HEADER, signPayload, type WebhookOptions } from './delivery.js';
export { decodeCursor, encodeCursor, type NotificationCursor } from './domain/cursor.js';
export type { NotificationRecord } from './domain/rules.js';
export { notificationIdFor } from './notification-id.js';
export { NotificationProcessor, NotifierBatchError, webhookPayload } from './processor.js';
export { createNotifierService, NOTIFIER_LOCK } from './service.js';
export { migrateNotifier, NotifierMigrationError } from './store/migrations.js';
export {
  CHECKPOINT_NAME,
  countReadable,
  listNotifications,
  type ReadSelection,
  readCheckpoint,
  readResult,
} from './store/notifications.js';
export { type OutboxStats, outboxStats } from './store/outbox.js';
