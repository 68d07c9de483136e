import { randomUUID } from 'node:crypto';
import {
  createPostgresEventStore,
  type EventStore,
  migrateEventStore,
  type NewEvent,
  type RecordedEvent,
} from '@chat/eventstore';
import { createLogger } from '@chat/platform';
import { consumerOutages, createTestDatabase, type TestDatabase, waitFor } from '@chat/testkit';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../src/checkpoints.js';
import { runConsumer } from '../src/consumer.js';
import { EventRejectedError } from '../src/failures.js';
import { migrateConsumers } from '../src/migrations.js';
import type { ConsumerOptions } from '../src/options.js';
import { listQuarantine, requestRetry, retryOutcomes } from '../src/quarantine.js';

// The runtime with a toy consumer whose effects are rows of `toy.applied`: events flagged `poison`
// fail the way a real consumer fails on a bad event (a JavaScript error, a value Postgres refuses, or
// an error naming the event) until the test cures them.

const logger = createLogger('consumer-test', 'silent');
const APP = 'consumer-under-test';
let database: TestDatabase;
let pool: pg.Pool;
let consumerPool: pg.Pool;
let store: EventStore;

beforeAll(async () => {
  database = await createTestDatabase('consumer');
  pool = new pg.Pool({ connectionString: database.url, max: 4 });
  // The consumer's own connections, named so the transient-failure test can terminate exactly them.
  consumerPool = new pg.Pool({ connectionString: database.url, max: 6, application_name: APP });
  consumerPool.on('error', () => {});
  await migrateEventStore(pool);
  await migrateConsumers(pool);
  await pool.query('CREATE SCHEMA toy');
  await pool.query('CREATE TABLE toy.applied (consumer text NOT NULL, event_id text NOT NULL)');
  store = createPostgresEventStore({ pool, pollIntervalMs: 50 });
});

afterAll(async () => {
  await store?.close();
  await consumerPool?.end();
  await pool?.end();
  await database?.drop();
});

const meta = { userId: 'u', correlationId: 'c', causationId: null, schemaVersion: 1 };
const event = (data: Record<string, unknown> = {}): NewEvent => ({
  id: randomUUID(),
  type: 'Toy',
  data,
  metadata: meta,
});

/** Appends in one transaction (so the consumer sees them in one batch); returns the last position. */
const append = async (stream: string, events: NewEvent[]) =>
  (await store.append(stream, events, 'any')).position;

const cured = new Set<string>();
const serializationFailures = new Map<string, number>();

/** Fails on a poisoned event until it is cured, like a consumer meeting an event it cannot apply. */
const failOnPoison = async (e: RecordedEvent, client?: pg.PoolClient) => {
  const poison = e.data.poison;
  if (typeof poison !== 'string' || cured.has(e.id)) return;
  if (poison === 'js') throw new TypeError(`cannot read the event ${e.id}`);
  if (poison === 'named') throw new EventRejectedError(e, 'its data fails the schema');
  if (poison === 'pg') await (client ?? pool).query(`SELECT '0000-01-01T00:00:00Z'::timestamptz`);
  // A real serialization failure (SQLSTATE 40001), five times — more than an event gets attempts.
  const failed = serializationFailures.get(e.id) ?? 0;
  if (poison === 'serialization' && failed < 5) {
    serializationFailures.set(e.id, failed + 1);
    await (client ?? pool).query(
      `DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure'; END $$`,
    );
  }
};

const appliedCounts = async (name: string) => {
  const { rows } = await pool.query<{ event_id: string; n: number }>(
    'SELECT event_id, count(*)::int AS n FROM toy.applied WHERE consumer = $1 GROUP BY event_id',
    [name],
  );
  return new Map(rows.map((r) => [r.event_id, r.n]));
};

const inTransaction = (name: string, extra: Partial<ConsumerOptions> = {}): ConsumerOptions =>
  ({
    name,
    store,
    pool: consumerPool,
    logger,
    filter: { streamPrefixes: [`${name}-`] },
    leaderRetryMs: 50,
    retryPollMs: 100,
    metrics: { registry: new Registry(), prefix: name },
    checkpoint: 'in-transaction',
    applyBatch: async (events, client) => {
      for (const e of events) {
        await failOnPoison(e, client);
        await client.query('INSERT INTO toy.applied VALUES ($1, $2)', [name, e.id]);
      }
    },
    ...extra,
  }) as ConsumerOptions;

const start = (options: ConsumerOptions) => {
  const stop = new AbortController();
  const running = runConsumer(options, stop.signal);
  return async () => {
    stop.abort();
    await running;
  };
};

const reaches = (name: string, position: string) =>
  waitFor(async () => ((await readCheckpoint(pool, name)) ?? '') >= position, {
    timeoutMs: 30_000,
    what: `${name} at ${position}`,
  });

describe('consumer runtime', () => {
  it('in-transaction: quarantines each event that fails alone, applies every other one exactly once', async () => {
    const name = 'tx';
    const registry = new Registry();
    const stop = start(inTransaction(name, { metrics: { registry, prefix: name } }));
    const events = Array.from({ length: 40 }, (_, i) =>
      event(i === 3 ? { poison: 'js' } : i === 17 ? { poison: 'pg' } : i === 30 ? { poison: 'named' } : {}),
    );
    const last = await append(`${name}-1`, events);
    await reaches(name, last);
    await stop();

    const applied = await appliedCounts(name);
    const poisoned = [events[3]!, events[17]!, events[30]!].map((e) => e.id);
    expect([...applied.keys()].sort()).toEqual(
      events
        .map((e) => e.id)
        .filter((id) => !poisoned.includes(id))
        .sort(),
    );
    expect([...applied.values()].every((n) => n === 1)).toBe(true);
    const quarantine = await listQuarantine(pool, name);
    expect(quarantine.map((q) => q.eventId)).toEqual(poisoned);
    expect(quarantine[1]).toMatchObject({
      consumer: name,
      streamId: `${name}-1`,
      revision: 17,
      type: 'Toy',
      attempts: 3,
      retryRequestedAt: null,
    });
    expect(quarantine[1]!.error).toMatch(/\[22008\]/);
    expect(quarantine[0]!.error).toMatch(/TypeError: cannot read the event/);
    expect(quarantine[2]!.error).toMatch(/EventRejectedError/);
    expect(quarantine[1]!.firstFailedAt.getTime()).toBeLessThanOrEqual(quarantine[1]!.lastFailedAt.getTime());
    const metrics = await registry.metrics();
    expect(metrics).toMatch(/^tx_quarantined_total 3$/m);
    expect(metrics).toMatch(/^tx_quarantine_size 3$/m);
    expect(metrics).toMatch(/^tx_events_applied_total 37$/m);
  });

  it('after-effects: the stream goes on past a quarantined event; effects at least once, in order', async () => {
    const name = 'ae';
    const effects: string[] = [];
    const stop = start({
      ...inTransaction(name),
      checkpoint: 'after-effects',
      applyBatch: async (events) => {
        for (const e of events) {
          await failOnPoison(e);
          effects.push(e.id);
        }
      },
    } as ConsumerOptions);
    const events = Array.from({ length: 25 }, (_, i) => event(i === 12 ? { poison: 'js' } : {}));
    const last = await append(`${name}-1`, events);
    await reaches(name, last);
    await stop();
    const expected = events.filter((_, i) => i !== 12).map((e) => e.id);
    expect([...new Set(effects)]).toEqual(expected);
    expect((await listQuarantine(pool, name)).map((q) => q.eventId)).toEqual([events[12]!.id]);
  });

  it('after-effects with checkpointEveryMs: one checkpoint write per interval, settled first; a failed settle resumes from the checkpoint', async () => {
    const name = 'ae_interval';
    const effects: string[] = [];
    const settled: number[] = [];
    let failNextSettle = false;
    const stop = start({
      ...inTransaction(name),
      checkpoint: 'after-effects',
      checkpointEveryMs: 300,
      applyBatch: async (events) => {
        for (const e of events) effects.push(e.id);
      },
      settleEffects: async () => {
        settled.push(effects.length);
        if (failNextSettle) {
          failNextSettle = false;
          throw new Error('the broker lost what it was sent');
        }
      },
    } as ConsumerOptions);
    // Twenty batches of one within one interval: far fewer checkpoint writes (each settled first) than
    // batches, and the last position is written once the interval has passed.
    const first: string[] = [];
    for (let i = 0; i < 20; i++) {
      const e = event();
      first.push(e.id);
      const position = await append(`${name}-1`, [e]);
      await waitFor(() => effects.includes(e.id), { what: `event ${i} applied` });
      if (i === 19) await reaches(name, position);
    }
    expect(settled.length).toBeGreaterThan(0);
    expect(settled.length).toBeLessThan(10);
    expect(effects).toEqual(first);

    // A settle that fails: what was applied since the checkpoint may be lost, so all of it is applied
    // again (in order, from the checkpoint), and the checkpoint still gets past it.
    const checkpoint = (await readCheckpoint(pool, name)) ?? '';
    failNextSettle = true;
    const second = [event(), event(), event()];
    const last = await append(`${name}-1`, second);
    await reaches(name, last);
    await stop();
    expect(checkpoint < last).toBe(true);
    const ids = second.map((e) => e.id);
    const after = effects.slice(first.length);
    // Applied once, then again from the checkpoint after the failed settle.
    expect(after.filter((id) => id === ids[0]).length).toBe(2);
    expect([...new Set(after)]).toEqual(ids);
    expect(after.slice(-3)).toEqual(ids);
    expect(await listQuarantine(pool, name)).toEqual([]);
  });

  it('blames no event while a dependency does not answer; quarantines once it does', async () => {
    const name = 'probe';
    let healthy = false;
    const stop = start(
      inTransaction(name, {
        probe: async () => {
          if (!healthy) throw new Error('NATS is down');
        },
      }),
    );
    const poisoned = event({ poison: 'js' });
    const last = await append(`${name}-1`, [event(), poisoned, event()]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await listQuarantine(pool, name)).toEqual([]);
    expect(await readCheckpoint(pool, name)).not.toBe(last);
    healthy = true;
    await reaches(name, last);
    await stop();
    expect((await listQuarantine(pool, name)).map((q) => q.eventId)).toEqual([poisoned.id]);
  });

  it('retries a serialization failure as a dependency failure: nothing quarantined however often it recurs', async () => {
    const name = 'serial';
    const registry = new Registry();
    const stop = start(inTransaction(name, { metrics: { registry, prefix: name } }));
    const events = [event(), event({ poison: 'serialization' }), event()];
    const last = await append(`${name}-1`, events);
    await reaches(name, last);
    await stop();
    expect(await listQuarantine(pool, name)).toEqual([]);
    expect([...(await appliedCounts(name)).entries()].sort()).toEqual(events.map((e) => [e.id, 1]).sort());
    expect(await registry.metrics()).toMatch(/^serial_retries_total\{reason="dependency"\} 5$/m);
  });

  it('retries a quarantined event on request: applied it leaves, failing again it stays', async () => {
    const name = 'retry';
    const stop = start(inTransaction(name));
    const [fixable, hopeless] = [event({ poison: 'pg' }), event({ poison: 'js' })];
    const last = await append(`${name}-1`, [fixable, event(), hopeless]);
    await reaches(name, last);
    expect((await listQuarantine(pool, name)).map((q) => q.eventId)).toEqual([fixable.id, hopeless.id]);

    cured.add(fixable.id);
    const requested = await requestRetry(pool, name, 'all');
    expect(requested).toHaveLength(2);
    const done = await waitFor(
      async () => {
        const outcomes = await retryOutcomes(pool, name, [fixable.id, hopeless.id]);
        return outcomes.every((o) => o.outcome !== 'pending') && outcomes;
      },
      { timeoutMs: 30_000, what: 'retry outcomes' },
    );
    await stop();
    expect(done.map((o) => o.outcome)).toEqual(['applied', 'failed']);
    expect((await appliedCounts(name)).get(fixable.id)).toBe(1);
    const [left] = await listQuarantine(pool, name);
    expect(left).toMatchObject({ eventId: hopeless.id, attempts: 4, retryRequestedAt: null });
  });

  it('Postgres failing mid-run (connections terminated, new ones refused) quarantines nothing, loses nothing', async () => {
    const name = 'outage';
    const stop = start(inTransaction(name, { batchSize: 20 }));
    const events: NewEvent[] = [];
    let last = '';
    const appendSome = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        const chunk = Array.from({ length: 10 }, () => event());
        events.push(...chunk);
        last = await append(`${name}-${i % 3}`, chunk);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    await appendSome(5);
    const terminated = await consumerOutages(pool, {
      database: database.name,
      applicationName: APP,
      ms: 3000,
      during: () => appendSome(10),
      recovered: () => reaches(name, last),
    });
    await appendSome(5);
    await reaches(name, last);
    await stop();
    expect(terminated).toBeGreaterThan(0);
    expect(await listQuarantine(pool, name)).toEqual([]);
    const applied = await appliedCounts(name);
    expect(applied.size).toBe(events.length);
    expect([...applied.values()].every((n) => n === 1)).toBe(true);
  });
  it('in-transaction: a live batch is BEGIN (with beginStatement), the checkpoint lock, its effects, and the checkpoint with COMMIT', async () => {
    const name = 'trips';
    // Every statement the consumer's own connections send, by connection.
    const counted = new pg.Pool({ connectionString: database.url, max: 4 });
    const sent = new Map<pg.PoolClient, string[]>();
    counted.on('connect', (client) => {
      const texts: string[] = [];
      sent.set(client as pg.PoolClient, texts);
      const query = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as { query: unknown }).query = (...args: unknown[]) => {
        const first = args[0];
        texts.push(typeof first === 'string' ? first : ((first as { text?: string })?.text ?? ''));
        return query(...args);
      };
    });
    const stop = start(
      inTransaction(name, {
        pool: counted,
        beginStatement: `SELECT set_config('toy.begun', 'yes', true)`,
        applyBatch: async (events, client) => {
          // beginStatement ran in this transaction.
          const { rows } = await client.query<{ begun: string }>(
            `SELECT current_setting('toy.begun') AS begun`,
          );
          for (const e of events)
            await client.query('INSERT INTO toy.applied VALUES ($1, $2)', [rows[0]?.begun, e.id]);
        },
      }),
    );
    try {
      await reaches(name, await append(`${name}-0`, [event()]));
      const before = [...sent.values()].reduce((n, texts) => n + texts.length, 0);
      const last = await append(`${name}-1`, [event()]);
      await reaches(name, last);
      await new Promise((r) => setTimeout(r, 100));
      const transactions = [...sent.values()].flatMap((texts) => {
        const out: string[][] = [];
        let current: string[] | undefined;
        for (const t of texts) {
          if (t.startsWith('BEGIN')) current = [];
          current?.push(t);
          if (current && /COMMIT$/.test(t)) {
            out.push(current);
            current = undefined;
          }
        }
        return out;
      });
      const batch = transactions.at(-1) ?? [];
      // BEGIN + beginStatement, the checkpoint lock, the two statements of applyBatch, checkpoint + COMMIT.
      expect(batch).toHaveLength(5);
      expect(batch[0]).toMatch(/^BEGIN; SELECT set_config\('toy.begun'/);
      expect(batch[4]).toMatch(/INSERT INTO consumers.checkpoints[\s\S]*; COMMIT$/);
      expect([...sent.values()].reduce((n, texts) => n + texts.length, 0)).toBeGreaterThan(before);
      expect((await appliedCounts('yes')).size).toBe(2);
      expect(await readCheckpoint(pool, name)).toBe(last);
    } finally {
      await stop();
      await counted.end();
    }
  });
});
