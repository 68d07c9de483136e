export { type NotifierConfig, notifierEnv } from './config.js';
export { DELIVERY_ID_HEADER, SIGNATURE_HEADER, signPayload, type WebhookOptions } from './delivery.js';
export { createNotifierService } from './service.js';
