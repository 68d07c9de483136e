export { type ProjectorConfig, projectorEnv } from './config.js';
