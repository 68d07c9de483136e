export * from './auth.js';
export * from './config.js';
export * from './leader.js';
export * from './logger.js';
export * from './migrate.js';
export * from './nats.js';
export * from './ops-server.js';
export * from './shutdown.js';
