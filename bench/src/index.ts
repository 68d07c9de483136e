export * from './histogram.js';
export * from './proc.js';
export * from './report.js';
