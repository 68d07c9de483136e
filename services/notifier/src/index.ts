export { type NotifierConfig, notifierEnv } from './config.js';
export { type WebhookOptions, webhookOptions } from './delivery.js';
export { createNotifierService } from './service.js';
export {
  signingKey,
  signWebhook,
  WEBHOOK_ID_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from './signature.js';
