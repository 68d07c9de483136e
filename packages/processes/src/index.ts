export * from './children.js';
export * from './ipc.js';
export * from './proc.js';
export * from './services.js';
