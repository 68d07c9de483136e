import type { ExpectedRevision, NewEvent } from './port.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Rejects malformed appends before they reach an adapter. In the Postgres adapter this matters beyond
 * the message: a bad append must not fail the shared group-commit transaction of its neighbours.
 */
export const validateAppend = (
  streamId: string,
  events: readonly NewEvent[],
  expected: ExpectedRevision,
): void => {
  if (typeof streamId !== 'string' || streamId.length === 0 || streamId.startsWith('$')) {
    throw new RangeError(`invalid stream id "${String(streamId)}"`);
  }
  if (expected !== 'any' && expected !== 'no_stream' && !(Number.isSafeInteger(expected) && expected >= -1)) {
    throw new RangeError(`invalid expected revision ${String(expected)}`);
  }
  const ids = new Set<string>();
  for (const event of events) {
    if (!UUID.test(event.id)) throw new RangeError(`event id "${event.id}" is not a UUID`);
    const id = event.id.toLowerCase();
    if (ids.has(id)) throw new RangeError(`event id ${id} appears twice in one append`);
    ids.add(id);
    if (typeof event.type !== 'string' || event.type.length === 0) {
      throw new RangeError('event type must be a non-empty string');
    }
  }
};
