export * from './database.js';
export * from './infra.js';
export * from './nats.js';
export * from './outage.js';
export * from './process.js';
export * from './random.js';
export * from './tokens.js';
export * from './wait.js';
