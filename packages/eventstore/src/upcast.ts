import { upcasters } from '@chat/events';
import type { RecordedEvent } from './port.js';

/**
 * Every adapter hands out events in their current schema: older shapes are lifted as they are read, so
 * the log stays immutable. Events without a schema version (not written through @chat/events) pass as is.
 */
export const upcastRecorded = (event: RecordedEvent): RecordedEvent =>
  typeof event.metadata.schemaVersion === 'number' ? upcasters.upcast(event) : event;
