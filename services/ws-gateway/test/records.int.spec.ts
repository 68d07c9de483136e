import { natsSubjects } from '@chat/events';
import { natsUrl, testSubjectPrefix } from '@chat/testkit';
import { connect, type KV, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KvRecords, RecordConflictError, RecordStoreError } from '../src/presence/records.js';

// The lean KV client must read and write exactly what nats.js's KV does (the command-api reads the
// records with it), with compare-and-set, delete markers and a missing bucket handled.

const bucket = natsSubjects(testSubjectPrefix()).presenceBucket;
let nats: NatsConnection;
let kv: KV;
let records: KvRecords;

beforeAll(async () => {
  nats = await connect({ servers: natsUrl() });
  kv = await nats.jetstream().views.kv(bucket, { history: 1 });
  records = new KvRecords(nats, bucket, 2_000);
  records.start();
});

afterAll(async () => {
  records?.stop();
  await kv?.destroy().catch(() => {});
  await nats?.drain();
});

describe('KvRecords', () => {
  it('reads, creates and compare-and-sets records as nats.js KV does', async () => {
    expect(await records.get('u.alice')).toEqual({ value: undefined, revision: 0 });
    const first = await records.write('u.alice', '{"g":{"gw1":1},"lastSeenAt":null}', 0);
    const seen = await kv.get('u.alice');
    expect([seen?.string(), seen?.revision]).toEqual(['{"g":{"gw1":1},"lastSeenAt":null}', first]);
    expect(await records.get('u.alice')).toEqual({
      value: '{"g":{"gw1":1},"lastSeenAt":null}',
      revision: first,
    });

    await expect(records.write('u.alice', '{"g":{}}', 0)).rejects.toBeInstanceOf(RecordConflictError);
    const second = await records.write('u.alice', '{"g":{}}', first);
    await expect(records.write('u.alice', '{"g":{"x":1}}', first)).rejects.toBeInstanceOf(
      RecordConflictError,
    );
    await kv.put('u.alice', '{"g":{"other":1}}');
    await expect(records.write('u.alice', '{"g":{}}', second)).rejects.toBeInstanceOf(RecordConflictError);
    expect((await records.get('u.alice')).value).toBe('{"g":{"other":1}}');
  });

  it('treats a deleted key as having no value, and writes over its delete marker', async () => {
    await records.write('u.bob', '{"g":{"gw1":1}}', 0);
    await kv.delete('u.bob');
    const marker = await records.get('u.bob');
    expect(marker.value).toBeUndefined();
    expect(marker.revision).toBeGreaterThan(0);
    await records.write('u.bob', '{"g":{"gw2":1}}', marker.revision);
    expect((await kv.get('u.bob'))?.string()).toBe('{"g":{"gw2":1}}');
  });

  it('fails fast with RecordStoreError when the bucket is gone', async () => {
    const other = natsSubjects(testSubjectPrefix()).presenceBucket;
    const gone = new KvRecords(nats, other, 2_000);
    gone.start();
    try {
      const started = Date.now();
      await expect(gone.get('u.carol')).rejects.toBeInstanceOf(RecordStoreError);
      await expect(gone.write('u.carol', '{}', 0)).rejects.toBeInstanceOf(RecordStoreError);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      gone.stop();
    }
  });
});
