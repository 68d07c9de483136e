import { PERSONAL_FIELDS } from '@chat/events';
import {
  type AppendResult,
  DataKeyRefusedError,
  EventIdConflictError,
  type EventStore,
  type ExpectedRevision,
  type NewEvent,
  type ReadAllOptions,
  type ReadStreamOptions,
  type RecordedEvent,
  type StoredDataKey,
  type StreamMetadata,
  type SubscribeOptions,
  WrongExpectedVersionError,
} from '../port.js';
import { type DataKey, type DataKeyStore, open, type SealingKey, seal } from './data-keys.js';

/**
 * The stored form of one personal text field (format v1): the string is replaced by this object.
 * `kid` names the author's data key and `ct` is base64 of iv(12) ‖ GCM tag(16) ‖ ciphertext (AES-256-GCM), authenticated with `<event id>:<field>` so a ciphertext cannot be
 * moved to another event or field. A reader meeting a plain string reads it as is (events written
 * before encryption existed); a later format gets another `enc`.
 */
export type EncryptedField = { enc: 'v1'; kid: string; ct: string };

export const isEncryptedField = (value: unknown): value is EncryptedField =>
  typeof value === 'object' &&
  value !== null &&
  (value as { enc?: unknown }).enc === 'v1' &&
  typeof (value as { kid?: unknown }).kid === 'string' &&
  typeof (value as { ct?: unknown }).ct === 'string';

const aad = (eventId: string, field: string) => `${eventId.toLowerCase()}:${field}`;

/**
 * Encrypts the personal fields of events about to be appended with each author's key (the one place on
 * the write path), from `keyOf` (called once per author). A field that is not a string (null title,
 * already encrypted) is left alone.
 */
export const encryptEvents = async (
  keyOf: (userId: string) => Promise<DataKey>,
  events: readonly NewEvent[],
): Promise<NewEvent[]> => {
  const byAuthor = new Map<string, DataKey>();
  const out: NewEvent[] = [];
  for (const event of events) {
    const fields = PERSONAL_FIELDS[event.type as keyof typeof PERSONAL_FIELDS];
    if (!fields) {
      out.push(event);
      continue;
    }
    let data = event.data;
    for (const { field, author } of fields) {
      const value = data[field];
      if (typeof value !== 'string') continue;
      const userId = data[author];
      if (typeof userId !== 'string') throw new RangeError(`${event.type}.${author} must name the author`);
      let writerKey = byAuthor.get(userId);
      if (!writerKey) {
        writerKey = await keyOf(userId);
        byAuthor.set(userId, writerKey);
      }
      const { kid, key } = writerKey;
      const sealed = seal(key, value, aad(event.id, field));
      data = { ...data, [field]: { enc: 'v1', kid, ct: sealed.toString('base64') } satisfies EncryptedField };
    }
    out.push(data === event.data ? event : { ...event, data });
  }
  return out;
};

/**
 * Decrypts the personal fields of stored events (the one place on the read path, under every reader):
 * a field whose key an erasure destroyed reads as null and the event's data gets `erased: true`.
 * Keys are fetched once per page for the kids the cache lacks, unless the page carried them (`carried`).
 */
export const decryptEvents = async (
  keys: DataKeyStore,
  events: readonly RecordedEvent[],
  carried?: ReadonlyMap<string, StoredDataKey>,
): Promise<RecordedEvent[]> => {
  const kids = new Set<string>();
  for (const event of events) {
    const fields = PERSONAL_FIELDS[event.type as keyof typeof PERSONAL_FIELDS];
    if (!fields) continue;
    for (const { field } of fields) {
      const value = event.data[field];
      if (isEncryptedField(value)) kids.add(value.kid);
    }
  }
  if (kids.size === 0) return events as RecordedEvent[];
  const found = await keys.keysForReading(kids, carried);
  return events.map((event) => {
    const fields = PERSONAL_FIELDS[event.type as keyof typeof PERSONAL_FIELDS];
    if (!fields) return event;
    let data = event.data;
    for (const { field } of fields) {
      const value = data[field];
      if (!isEncryptedField(value)) continue;
      const key = found.get(value.kid);
      if (key === undefined) throw new Error(`no key ${value.kid} fetched`);
      data =
        key === null
          ? { ...data, [field]: null, erased: true }
          : {
              ...data,
              [field]: open(key, Buffer.from(value.ct, 'base64'), aad(event.id, field)).toString('utf8'),
            };
    }
    return data === event.data ? event : { ...event, data };
  });
};

/**
 * An event store whose personal fields are encrypted at rest (crypto-shredding): wraps any adapter, so
 * the command writer, the projector, the relay, the notifier, gateways' resume, `chatctl` and the admin
 * reads all see plaintext — or `null` with `erased: true` — through this one decorator.
 */
export class EncryptingEventStore implements EventStore {
  constructor(
    readonly inner: EventStore,
    readonly keys: DataKeyStore,
  ) {}

  /**
   * With an adapter that stores keys in the append's transaction (Postgres), a writer's first key costs
   * no statement or commit of its own: it is made here and stored with the first events sealed with it
   * (`appendWithKeys`; a key past its cache TTL is checked the same way). When the append refuses it
   * (another process stored the writer's key first, or the writer was erased), the events are sealed
   * again with the key `keyForWriting` reads — or it throws ErasedUserError.
   */
  async append(
    streamId: string,
    events: readonly NewEvent[],
    expectedRevision: ExpectedRevision,
  ): Promise<AppendResult> {
    const viaTable = (userId: string) => this.keys.keyForWriting(userId);
    if (!this.inner.appendWithKeys) {
      return this.inner.append(streamId, await encryptEvents(viaTable, events), expectedRevision);
    }
    const sealing = new Map<string, SealingKey>();
    const sealed = await encryptEvents(async (userId) => {
      const key = await this.keys.keyForSealing(userId);
      sealing.set(userId, key);
      return key;
    }, events);
    const claims = [...sealing.values()].flatMap((k) => (k.claim ? [k.claim] : []));
    if (claims.length === 0) return this.inner.append(streamId, sealed, expectedRevision);
    let result: AppendResult;
    try {
      result = await this.inner.appendWithKeys(streamId, sealed, expectedRevision, claims);
    } catch (err) {
      if (err instanceof DataKeyRefusedError) {
        this.keys.sealed(sealing, 'refused');
        return this.inner.append(streamId, await encryptEvents(viaTable, events), expectedRevision);
      }
      // Refused for its revision or ids, the append's transaction still stored the keys.
      if (err instanceof WrongExpectedVersionError || err instanceof EventIdConflictError)
        this.keys.sealed(sealing, 'stored');
      throw err;
    }
    this.keys.sealed(sealing, 'stored');
    return result;
  }

  async readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]> {
    return decryptEvents(this.keys, await this.inner.readStream(streamId, options));
  }

  streamRevision(streamId: string): Promise<number> {
    return this.inner.streamRevision(streamId);
  }

  async readAll(options?: ReadAllOptions): Promise<RecordedEvent[]> {
    return decryptEvents(this.keys, await this.inner.readAll(options));
  }

  async *subscribeToAll(options?: SubscribeOptions): AsyncIterable<RecordedEvent[]> {
    if (!this.inner.subscribeToAllWithKeys) {
      for await (const batch of this.inner.subscribeToAll(options))
        yield await decryptEvents(this.keys, batch);
      return;
    }
    // The pages at the log's tail carry their data keys: a new writer's first message, or a key past the
    // cache's TTL, costs no key query per reader.
    for await (const page of this.inner.subscribeToAllWithKeys(options))
      yield await decryptEvents(this.keys, page.events, page.dataKeys);
  }

  headPosition(): Promise<string> {
    return this.inner.headPosition();
  }

  setStreamMetadata(streamId: string, metadata: StreamMetadata): Promise<void> {
    return this.inner.setStreamMetadata(streamId, metadata);
  }

  getStreamMetadata(streamId: string): Promise<StreamMetadata> {
    return this.inner.getStreamMetadata(streamId);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  async close(): Promise<void> {
    await this.inner.close();
    await this.keys.close();
  }
}
