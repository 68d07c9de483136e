import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateEventStore } from '../src/index.js';

// A session plans es.append_batch's statements once and keeps the plans. Planned while the log was
// empty (a fresh database), a join against es.events picked a sequential scan and kept it as the log
// grew: every append then read the whole log (13 ms per 32 appends at 200,000 events, 30 % of B4's
// throughput). The appends must probe es.events and es.streams by index whatever the statistics.

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('appendplan');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  await migrateEventStore(pool);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

const batch = (round: number) =>
  JSON.stringify(
    Array.from({ length: 16 }, (_, i) => ({
      i,
      s: `plan-${round}-${i}`,
      e: null,
      ev: [{ id: randomUUID(), type: 'Planned', data: { round }, metadata: {} }],
    })),
  );

describe('es.append_batch', () => {
  it('probes the log and the streams by index, also with plans made while the log was empty', async () => {
    const session = await pool.connect();
    try {
      const append = (round: number) =>
        session.query<{ o_status: string }>('SELECT o_status FROM es.append_batch($1::jsonb)', [
          batch(round),
        ]);
      // Past plpgsql's five custom plans: the session now holds the plans made for an empty log.
      for (let round = 0; round < 8; round++) await append(round);
      // The log grows with no ANALYZE in between, as it does in a fresh deployment's first minute.
      await pool.query(`
        INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
        SELECT 'bulk-' || (g % 500), g / 500, gen_random_uuid(), 'Bulk', '{}', '{}'
          FROM generate_series(0, 19999) g`);

      await session.query("LOAD 'auto_explain'");
      await session.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
                           SET auto_explain.log_level = notice; SET client_min_messages = notice`);
      const plans: string[] = [];
      const onNotice = (notice: { message?: string }) => plans.push(notice.message ?? '');
      session.on('notice', onNotice);
      const { rows } = await append(8);
      session.off('notice', onNotice);

      expect(rows.map((r) => r.o_status)).toEqual(Array(16).fill('ok'));
      const probes = plans.filter((p) => /es\.events|es\.streams/.test(p));
      expect(probes.length).toBeGreaterThan(0);
      expect(probes.filter((p) => /Seq Scan on (events|streams)/.test(p))).toEqual([]);
    } finally {
      await session.query('RESET ALL').catch(() => undefined);
      session.release(true);
    }
  });
});
