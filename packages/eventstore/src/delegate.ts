import type { EventStore } from './port.js';

/**
 * An EventStore that passes every call of the port to `inner`, except those `overrides` answer: the base
 * of a store that changes one or two calls (a shared log read, publishing what an append stored). The
 * adapters' optional extensions (`appendWithKeys`, `subscribeToAllWithKeys`) are not passed on: whoever
 * wraps a store takes its reads and appends through the port.
 */
export const delegatingStore = <O extends Partial<EventStore>>(
  inner: EventStore,
  overrides: O,
): EventStore & O => ({
  append: (streamId, events, expected) => inner.append(streamId, events, expected),
  readStream: (streamId, options) => inner.readStream(streamId, options),
  streamRevision: (streamId) => inner.streamRevision(streamId),
  readAll: (options) => inner.readAll(options),
  subscribeToAll: (options) => inner.subscribeToAll(options),
  headPosition: () => inner.headPosition(),
  setStreamMetadata: (streamId, metadata) => inner.setStreamMetadata(streamId, metadata),
  getStreamMetadata: (streamId) => inner.getStreamMetadata(streamId),
  ping: () => inner.ping(),
  close: () => inner.close(),
  ...overrides,
});
