export { createProjectionMetrics, type ProjectionMetrics } from './projection/metrics.js';
export {
  applyLockKey,
  createProjector,
  PROJECTED_STREAMS,
  type Projector,
  type ProjectorDeps,
} from './projection/projector.js';
export { positionFraction } from './projection/rebuild-progress.js';
export { type PublishUserMessage, publishUnread } from './projection/unread.js';
export { type BatchResult, projectBatch } from './projection/writer.js';
export {
  RebuildInProgressError,
  type RebuildProgress,
  type RebuildResult,
  rebuildReadModels,
  SHADOW_SCHEMA_PREFIX,
} from './rebuild/rebuild.js';
