import type { RecordedEvent } from './port.js';

/**
 * An event as it leaves the system (API.md §3): the envelope's fields in their documented order. Every
 * export writes this — `chatctl replay`, the export API's pages and NDJSON lines — so they agree byte
 * for byte.
 */
export const toEnvelope = (e: RecordedEvent): RecordedEvent => ({
  id: e.id,
  type: e.type,
  streamId: e.streamId,
  revision: e.revision,
  position: e.position,
  occurredAt: e.occurredAt,
  data: e.data,
  metadata: e.metadata,
});

/** One NDJSON line (without its newline). */
export const envelopeLine = (e: RecordedEvent): string => JSON.stringify(toEnvelope(e));
