export {
  applyLockKey,
  createProjector,
  PROJECTED_STREAMS,
  PROJECTION_LOCK,
  type Projector,
  type ProjectorDeps,
} from './projector.js';
export {
  REBUILD_CHECKPOINT,
  RebuildInProgressError,
  RebuildInterruptedError,
  type RebuildProgress,
  type RebuildResult,
  rebuildReadModels,
  SHADOW_SCHEMA_PREFIX,
} from './rebuild.js';
export { positionFraction, registerRebuildProgress } from './rebuild-progress.js';
export { MalformedEventError, toProjectedEvent } from './state.js';
export { type PublishUserMessage, publishUnread } from './unread.js';
export { type BatchResult, createReplayer, type OnRejected, projectEvents } from './writer.js';
