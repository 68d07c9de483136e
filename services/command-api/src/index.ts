export { type AppDeps, BODY_LIMIT_BYTES, buildApp } from './app.js';
export type {
  Actor,
  Clock,
  CommandDefinition,
  CommandOutcome,
  CommandServices,
  RegisteredCommand,
} from './commands/catalogue.js';
export { defineCommand } from './commands/catalogue.js';
export { directConversationId, uuidV5 } from './commands/ids.js';
export { CommandRegistry } from './commands/registry.js';
export { type AppConfig, configSchema, readConfig } from './config.js';
export type { AuthUser, TokenVerifier } from './plugins/auth.js';
export { RateLimitedError, RequestValidationError, toApiError } from './plugins/errors.js';
export type { Infrastructure } from './plugins/infrastructure.js';
export type { AppMetrics } from './plugins/metrics.js';
