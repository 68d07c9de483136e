export { type Io, runChatctl } from './cli.js';
export { replay } from './commands/replay.js';
export { collectStats, formatStats, type Stats } from './commands/stats.js';
export { tail } from './commands/tail.js';
export { type EventSelection, selectionFrom, UsageError } from './filters.js';
