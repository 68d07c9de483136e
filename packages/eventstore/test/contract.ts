import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EventStore,
  type RecordedEvent,
  START_POSITION,
  WrongExpectedVersionError,
} from '../src/index.js';
import { collect, newEvent, newEvents, sleep, uniqueCategory, untilVisible } from './helpers.js';

export type ContractFixture = { store: EventStore; teardown: () => Promise<void> };

const byStream = (events: RecordedEvent[]): Map<string, number[]> => {
  const revisions = new Map<string, number[]>();
  for (const e of events) revisions.set(e.streamId, [...(revisions.get(e.streamId) ?? []), e.revision]);
  return revisions;
};

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * The behaviour every EventStore adapter must show. Tests share one store and tell their data apart by a
 * unique stream category each, so the suite also runs against one long-lived EventStoreDB.
 */
export const describeEventStoreContract = (name: string, createFixture: () => Promise<ContractFixture>) => {
  describe(`EventStore contract: ${name}`, () => {
    let fixture: ContractFixture;
    let store: EventStore;

    beforeAll(async () => {
      fixture = await createFixture();
      store = fixture.store;
    });
    afterAll(async () => {
      await fixture?.teardown();
    });

    describe('append', () => {
      it('creates a stream with no_stream and reads it back in order with every field', async () => {
        const stream = `${uniqueCategory('a')}-1`;
        const events = [newEvent('Opened', { n: 1 }), newEvent('Closed', { n: 2 })];
        const result = await store.append(stream, events, 'no_stream');
        expect(result.nextExpectedRevision).toBe(1);
        expect(result.position).toMatch(/^[0-9a-f]{32}$/);

        const read = await store.readStream(stream);
        expect(read.map((e) => [e.id, e.type, e.revision, e.data])).toEqual([
          [events[0]!.id, 'Opened', 0, { n: 1 }],
          [events[1]!.id, 'Closed', 1, { n: 2 }],
        ]);
        expect(read[1]!.position).toBe(result.position);
        expect(read[0]!.position < read[1]!.position).toBe(true);
        expect(read[0]!.streamId).toBe(stream);
        expect(read[0]!.metadata).toEqual(events[0]!.metadata);
        expect(new Date(read[0]!.occurredAt).toISOString()).toBe(read[0]!.occurredAt);
        expect(Math.abs(Date.parse(read[0]!.occurredAt) - Date.now())).toBeLessThan(60_000);
        expect(await store.streamRevision(stream)).toBe(1);
      });

      it('checks an exact expected revision and reports the actual one on conflict', async () => {
        const stream = `${uniqueCategory('a')}-1`;
        await store.append(stream, newEvents(3), 'no_stream');
        await expect(store.append(stream, [newEvent()], 2)).resolves.toMatchObject({
          nextExpectedRevision: 3,
        });

        const stale = await store.append(stream, [newEvent()], 1).catch((e: unknown) => e);
        expect(stale).toBeInstanceOf(WrongExpectedVersionError);
        expect(stale).toMatchObject({ streamId: stream, expected: 1, actual: 3 });

        const exists = await store.append(stream, [newEvent()], 'no_stream').catch((e: unknown) => e);
        expect(exists).toMatchObject({ name: 'WrongExpectedVersionError', actual: 3 });

        const missing = `${uniqueCategory('a')}-2`;
        const none = await store.append(missing, [newEvent()], 0).catch((e: unknown) => e);
        expect(none).toMatchObject({ name: 'WrongExpectedVersionError', expected: 0, actual: -1 });
        expect(await store.readStream(stream)).toHaveLength(4);
        expect(await store.readStream(missing)).toEqual([]);
      });

      it('appends with any to new and existing streams', async () => {
        const stream = `${uniqueCategory('a')}-1`;
        expect((await store.append(stream, [newEvent()], 'any')).nextExpectedRevision).toBe(0);
        expect((await store.append(stream, newEvents(2), 'any')).nextExpectedRevision).toBe(2);
        expect((await store.readStream(stream)).map((e) => e.revision)).toEqual([0, 1, 2]);
      });

      it('is idempotent by event id: a repeat returns the first result and appends nothing', async () => {
        const stream = `${uniqueCategory('idem')}-1`;
        const events = newEvents(2);
        // A repeat stores nothing, so it has no occurredAt of its own to answer (AppendResult).
        const { occurredAt: _, ...first } = await store.append(stream, events, 'no_stream');
        // A retry carries the expected revision the command saw first, which is stale by now.
        await expect(store.append(stream, events, 'no_stream')).resolves.toEqual(first);
        await expect(store.append(stream, events, 'any')).resolves.toEqual(first);
        await store.append(stream, [newEvent()], 1);
        await expect(store.append(stream, events, -1)).resolves.toEqual(first);
        expect(await store.readStream(stream)).toHaveLength(3);
      });

      it('lets exactly one of many concurrent duplicates append; the others get its result', async () => {
        const stream = `${uniqueCategory('idem')}-1`;
        await store.append(stream, [newEvent()], 'no_stream');
        const event = newEvent('MessageSent', { messageId: 'm-1' });
        const results = await Promise.all(range(20).map(() => store.append(stream, [event], 0)));
        const answers = results.map(({ nextExpectedRevision, position }) => ({
          nextExpectedRevision,
          position,
        }));
        expect(new Set(answers.map((r) => JSON.stringify(r))).size).toBe(1);
        // The one that stored it knows when; the repeats do not (Postgres answers with it).
        expect(results.filter((r) => r.occurredAt !== undefined).length).toBeLessThanOrEqual(1);
        expect(results[0]!.nextExpectedRevision).toBe(1);
        const read = await store.readStream(stream);
        expect(read.map((e) => e.id)).toEqual([read[0]!.id, event.id]);
      });

      it('serialises concurrent appends: no lost or duplicate events, revisions gap-free', async () => {
        const category = uniqueCategory('gc');
        const streams = range(8).map((i) => `${category}-${i}`);
        const appended = await Promise.all(
          range(240).map((i) => {
            const events = newEvents(1 + (i % 3));
            return store.append(streams[i % streams.length]!, events, 'any').then(() => events);
          }),
        );
        const expectedIds = new Set(appended.flat().map((e) => e.id));
        for (const stream of streams) {
          const read = await store.readStream(stream);
          expect(read.map((e) => e.revision)).toEqual(range(read.length));
          expect(await store.streamRevision(stream)).toBe(read.length - 1);
          for (const e of read) expect(expectedIds.delete(e.id)).toBe(true);
        }
        expect(expectedIds.size).toBe(0);
      });

      it('checks each concurrent append against its own expected revision', async () => {
        const stream = `${uniqueCategory('gc')}-1`;
        const other = `${uniqueCategory('gc')}-2`;
        await store.append(stream, newEvents(2), 'no_stream');
        const outcomes = await Promise.allSettled([
          ...range(10).map(() => store.append(stream, [newEvent()], 1)),
          store.append(other, [newEvent()], 'no_stream'),
        ]);
        const fulfilled = outcomes.filter((o) => o.status === 'fulfilled');
        const rejected = outcomes.filter((o) => o.status === 'rejected');
        expect(fulfilled).toHaveLength(2);
        expect(rejected).toHaveLength(9);
        for (const r of rejected) {
          expect(r.reason).toBeInstanceOf(WrongExpectedVersionError);
          expect(r.reason).toMatchObject({ actual: 2 });
        }
        expect(await store.readStream(stream)).toHaveLength(3);
        expect(await store.readStream(other)).toHaveLength(1);
      });

      it('checks concurrent appends to different streams each against its own expected revision', async () => {
        const category = uniqueCategory('gc');
        const [a, b, c, d, e] = range(5).map((i) => `${category}-${i}`);
        await store.append(a!, newEvents(2), 'no_stream');
        await store.append(b!, newEvents(1), 'no_stream');
        await store.append(c!, newEvents(3), 'no_stream');
        const outcomes = await Promise.allSettled([
          store.append(a!, newEvents(2), 1),
          store.append(b!, newEvents(1), 5),
          store.append(c!, newEvents(1), 'any'),
          store.append(d!, newEvents(2), 'no_stream'),
          store.append(e!, newEvents(1), 0),
        ]);
        expect(
          outcomes.map((o) => (o.status === 'fulfilled' ? o.value.nextExpectedRevision : o.reason.actual)),
        ).toEqual([3, 0, 3, 1, -1]);
        expect(outcomes.map((o) => o.status)).toEqual([
          'fulfilled',
          'rejected',
          'fulfilled',
          'fulfilled',
          'rejected',
        ]);
        for (const [i, stream] of [a!, b!, c!, d!, e!].entries()) {
          const outcome = outcomes[i]!;
          const read = await store.readStream(stream);
          if (outcome.status === 'fulfilled') expect(read.at(-1)!.position).toBe(outcome.value.position);
          expect(read.map((x) => x.revision)).toEqual(range(read.length));
        }
        expect((await store.readStream(b!)).length).toBe(1);
        expect(await store.streamRevision(e!)).toBe(-1);
      });

      it('rejects malformed appends without writing anything', async () => {
        const stream = `${uniqueCategory('bad')}-1`;
        // Refused by the port's own validation, each for its reason — not by whatever the database
        // happens to throw later (a duplicate id in one append would otherwise hit the unique index).
        await expect(
          store.append(stream, [{ ...newEvent(), id: 'not-a-uuid' }], 'any'),
        ).rejects.toMatchObject({
          name: 'RangeError',
          message: 'event id "not-a-uuid" is not a UUID',
        });
        const event = newEvent();
        await expect(store.append(stream, [event, event], 'any')).rejects.toMatchObject({
          name: 'RangeError',
          message: `event id ${event.id} appears twice in one append`,
        });
        await expect(store.append(stream, [newEvent()], -2)).rejects.toMatchObject({
          name: 'RangeError',
          message: 'invalid expected revision -2',
        });
        expect(await store.streamRevision(stream)).toBe(-1);
      });
    });

    describe('readStream', () => {
      it('reads forwards and backwards from a revision with a max count', async () => {
        const stream = `${uniqueCategory('rs')}-1`;
        await store.append(stream, newEvents(10), 'no_stream');
        const revisions = async (o: Parameters<EventStore['readStream']>[1]) =>
          (await store.readStream(stream, o)).map((e) => e.revision);
        expect(await revisions({})).toEqual(range(10));
        expect(await revisions({ fromRevision: 7 })).toEqual([7, 8, 9]);
        expect(await revisions({ fromRevision: 2, maxCount: 3 })).toEqual([2, 3, 4]);
        expect(await revisions({ direction: 'backwards' })).toEqual(range(10).reverse());
        expect(await revisions({ direction: 'backwards', maxCount: 2 })).toEqual([9, 8]);
        expect(await revisions({ direction: 'backwards', fromRevision: 4, maxCount: 3 })).toEqual([4, 3, 2]);
        expect(await revisions({ fromRevision: 10 })).toEqual([]);
      });

      it('reads an unknown stream as empty with revision -1', async () => {
        const stream = `${uniqueCategory('rs')}-none`;
        expect(await store.readStream(stream)).toEqual([]);
        expect(await store.readStream(stream, { direction: 'backwards' })).toEqual([]);
        expect(await store.streamRevision(stream)).toBe(-1);
      });
    });

    describe('readAll', () => {
      it('pages the log in order from an exclusive position, filtered by stream prefix', async () => {
        const category = uniqueCategory('ra');
        const before = await store.headPosition();
        for (let i = 0; i < 5; i++) await store.append(`${category}-${i % 2}`, newEvents(3), 'any');
        await untilVisible(
          store,
          (await store.append(`${uniqueCategory('ra')}-x`, newEvents(2), 'any')).position,
        );

        const pages: RecordedEvent[][] = [];
        let from = before;
        for (;;) {
          const page = await store.readAll({
            fromPosition: from,
            maxCount: 4,
            filter: { streamPrefixes: [`${category}-`] },
          });
          if (page.length === 0) break;
          pages.push(page);
          from = page.at(-1)!.position;
        }
        const all = pages.flat();
        expect(all).toHaveLength(15);
        expect(pages.every((p) => p.length <= 4)).toBe(true);
        expect(all.every((e) => e.streamId.startsWith(category))).toBe(true);
        const positions = all.map((e) => e.position);
        expect([...positions].sort()).toEqual(positions);
        expect(new Set(positions).size).toBe(15);
        expect(byStream(all)).toEqual(
          new Map([
            [`${category}-0`, range(9)],
            [`${category}-1`, range(6)],
          ]),
        );
        expect(all.every((e) => e.position > before)).toBe(true);
        expect((await store.headPosition()) >= all.at(-1)!.position).toBe(true);
      });

      it('filters by event type and by several prefixes', async () => {
        const a = uniqueCategory('ra');
        const b = uniqueCategory('ra');
        const before = await store.headPosition();
        await store.append(`${a}-1`, [newEvent('Kept'), newEvent('Dropped'), newEvent('Kept')], 'any');
        await untilVisible(store, (await store.append(`${b}-1`, [newEvent('Kept')], 'any')).position);
        const kept = await store.readAll({
          fromPosition: before,
          filter: { streamPrefixes: [`${a}-`, `${b}-`], eventTypes: ['Kept'] },
        });
        expect(kept.map((e) => [e.streamId, e.revision])).toEqual([
          [`${a}-1`, 0],
          [`${a}-1`, 2],
          [`${b}-1`, 0],
        ]);
      });

      it('starts at the beginning of the log by default', async () => {
        const stream = `${uniqueCategory('ra')}-1`;
        await untilVisible(store, (await store.append(stream, newEvents(1), 'any')).position);
        const first = await store.readAll({ maxCount: 1 });
        expect(first).toHaveLength(1);
        expect(first[0]!.position > START_POSITION).toBe(true);
      });
    });

    describe('subscribeToAll', () => {
      it('catches up, then delivers live events, in order, filtered', async () => {
        const category = uniqueCategory('sub');
        const from = await store.headPosition();
        await store.append(`${category}-1`, newEvents(5), 'no_stream');
        await store.append(`${uniqueCategory('sub')}-other`, newEvents(3), 'no_stream');
        const live = (async () => {
          await sleep(300);
          await store.append(`${category}-1`, newEvents(3), 4);
          await store.append(`${category}-2`, newEvents(2, 'Other'), 'no_stream');
          await store.append(`${category}-1`, newEvents(1), 7);
        })();
        const events = await collect(
          store,
          { fromPosition: from, filter: { streamPrefixes: [`${category}-`] } },
          (e) => e.length >= 11,
        );
        await live;
        expect(events).toHaveLength(11);
        expect(byStream(events)).toEqual(
          new Map([
            [`${category}-1`, range(9)],
            [`${category}-2`, range(2)],
          ]),
        );
        const positions = events.map((e) => e.position);
        expect([...positions].sort()).toEqual(positions);
      });

      it('filters by event type and honours the batch size', async () => {
        const category = uniqueCategory('sub');
        const from = await store.headPosition();
        await store.append(`${category}-1`, newEvents(7, 'Wanted'), 'any');
        await store.append(`${category}-1`, newEvents(5, 'Unwanted'), 'any');
        await store.append(`${category}-1`, newEvents(1, 'Wanted'), 'any');
        const sizes: number[] = [];
        const events = await collect(
          store,
          {
            fromPosition: from,
            batchSize: 3,
            filter: { eventTypes: ['Wanted'], streamPrefixes: [category] },
          },
          (e) => {
            sizes.push(e.length);
            return e.length >= 8;
          },
        );
        expect(events.map((e) => e.revision)).toEqual([0, 1, 2, 3, 4, 5, 6, 12]);
        expect(events.every((e) => e.type === 'Wanted')).toBe(true);
        expect(sizes.every((n, i) => n - (sizes[i - 1] ?? 0) <= 3)).toBe(true);
      });

      it('ends when its signal aborts', async () => {
        const controller = new AbortController();
        const category = uniqueCategory('sub');
        const from = await store.headPosition();
        await store.append(`${category}-1`, newEvents(1), 'any');
        const seen: RecordedEvent[] = [];
        const done = (async () => {
          for await (const batch of store.subscribeToAll({
            fromPosition: from,
            signal: controller.signal,
            filter: { streamPrefixes: [category] },
          })) {
            seen.push(...batch);
            controller.abort();
          }
        })();
        await expect(done).resolves.toBeUndefined();
        expect(seen).toHaveLength(1);

        const idle = new AbortController();
        const waiting = (async () => {
          for await (const _ of store.subscribeToAll({
            fromPosition: await store.headPosition(),
            signal: idle.signal,
            filter: { streamPrefixes: [uniqueCategory('none')] },
          })) {
            throw new Error('no event expected');
          }
        })();
        await sleep(200);
        idle.abort();
        await expect(waiting).resolves.toBeUndefined();
      });
    });

    describe('stream metadata', () => {
      it('stores max age and reads expired events as gone', async () => {
        const stream = `${uniqueCategory('typing')}-1`;
        expect(await store.getStreamMetadata(stream)).toEqual({});
        await store.setStreamMetadata(stream, { maxAgeSeconds: 1 });
        expect(await store.getStreamMetadata(stream)).toEqual({ maxAgeSeconds: 1 });
        expect(await store.streamRevision(stream)).toBe(-1);
        await store.append(stream, newEvents(2), 'no_stream');
        expect(await store.readStream(stream)).toHaveLength(2);
        await sleep(2_100);
        expect(await store.readStream(stream)).toEqual([]);
        // Expiry hides events; the revision keeps counting.
        await expect(store.append(stream, [newEvent()], 1)).resolves.toMatchObject({
          nextExpectedRevision: 2,
        });
        expect((await store.readStream(stream)).map((e) => e.revision)).toEqual([2]);
      });
    });

    it('answers ping', async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
};
