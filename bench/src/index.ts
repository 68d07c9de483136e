export * from './histogram.js';
export * from './report.js';
