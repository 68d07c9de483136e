export { type CheckResult, checkHistory, type Verdict } from './checker/index.js';
export { mergeHistories, readHistoryFile } from './history/file.js';
export type * from './history/types.js';
