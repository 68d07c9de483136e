export {
  createNotificationConsumer,
  NOTIFIER_LOCK,
  type NotificationConsumerDeps,
  webhookPayload,
} from './consumer.js';
export { decodeCursor, encodeCursor, type NotificationCursor } from './domain/cursor.js';
export { notificationIdFor } from './domain/notification-id.js';
export type { NotificationRecord } from './domain/rules.js';
export { migrateNotifier, NOTIFIER_SCHEMA } from './migrations.js';
export {
  countReadable,
  listNotifications,
  NOTIFIER_CONSUMER,
  type ReadSelection,
  readCheckpoint,
  readResult,
} from './store/notifications.js';
export {
  type ClaimedDelivery,
  claimDeliveries,
  type DeliveryRow,
  type DeliveryState,
  listDeliveries,
  markDelivered,
  markFailed,
  nextDueAt,
  type OutboxStats,
  outboxStats,
  pruneDelivered,
  type RedriveSelection,
  redriveDeliveries,
} from './store/outbox.js';
