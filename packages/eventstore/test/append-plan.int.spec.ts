import { randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from '@chat/testkit';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateEventStore } from '../src/index.js';
import { KEY_TABLES } from './helpers.js';

// A session plans es.append_batch's statements once and keeps the plans. Planned while the log was
// empty (a fresh database), a join against es.events picked a sequential scan and kept it as the log
// grew: every append then read the whole log (13 ms per 32 appends at 200,000 events, 30 % of B4's
// throughput). The appends must probe es.events and es.streams by index whatever the statistics.
// The same holds for the key tables an append carrying data keys checks: as an anti-join, the check
// that the batch's keys are their writers' stored keys hashed the whole of keys.user_data_keys into
// every such append (18 ms per append at 10,000 users, and every writer's first message is one).

let database: TestDatabase;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createTestDatabase('appendplan');
  pool = new pg.Pool({ connectionString: database.url, max: 2 });
  await migrateEventStore(pool);
  await pool.query(KEY_TABLES);
});

afterAll(async () => {
  await pool?.end();
  await database?.drop();
});

type Append = { i: number; s: string; e: null; ev: unknown[]; k?: unknown[] };

const batch = (round: number, withKeys = false): string =>
  JSON.stringify(
    Array.from({ length: 16 }, (_, i): Append => {
      const author = `plan-writer-${round}-${i}`;
      return {
        i,
        s: `plan-${round}-${i}`,
        e: null,
        ev: [{ id: randomUUID(), type: 'Planned', data: { round }, metadata: {} }],
        ...(withKeys
          ? { k: [{ u: author, k: randomUUID(), w: Buffer.from(author).toString('base64') }] }
          : {}),
      };
    }),
  );

/**
 * Runs `rounds` appends of 16 on one session (past plpgsql's five custom plans, so the session keeps
 * the plans it made then), lets `grow` enlarge the tables with no ANALYZE in between, as in a fresh
 * deployment's first minute, and returns the statuses of one more append with the plans of every
 * statement it ran (auto_explain).
 */
const plansAfterGrowth = async (
  withKeys: boolean,
  grow: () => Promise<unknown>,
): Promise<{ statuses: string[]; plans: string[] }> => {
  const session = await pool.connect();
  try {
    const append = (round: number) =>
      session.query<{ o_status: string }>('SELECT o_status FROM es.append_batch($1::jsonb)', [
        batch(round, withKeys),
      ]);
    const rounds = 8;
    for (let round = 0; round < rounds; round++) await append(round);
    await grow();

    await session.query("LOAD 'auto_explain'");
    await session.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on;
                         SET auto_explain.log_level = notice; SET client_min_messages = notice`);
    const plans: string[] = [];
    const onNotice = (notice: { message?: string }) => plans.push(notice.message ?? '');
    session.on('notice', onNotice);
    const { rows } = await append(rounds);
    session.off('notice', onNotice);
    return { statuses: rows.map((r) => r.o_status), plans };
  } finally {
    await session.query('RESET ALL').catch(() => undefined);
    session.release(true);
  }
};

/** The plan nodes reading `tables`, each with the line after it (where an index scan's condition is). */
const scansOf = (plans: readonly string[], tables: RegExp): string[] =>
  plans.flatMap((plan) => {
    const lines = plan.split('\n');
    return lines.flatMap((line, n) =>
      new RegExp(`Scan.* on (${tables.source})\\b`).test(line)
        ? [`${line.trim()} | ${lines[n + 1]?.trim()}`]
        : [],
    );
  });

describe('es.append_batch', () => {
  it('probes the log and the streams by index, also with plans made while the log was empty', async () => {
    const { statuses, plans } = await plansAfterGrowth(false, () =>
      pool.query(`
        INSERT INTO es.events (stream_id, revision, event_id, type, data, metadata)
        SELECT 'bulk-' || (g % 500), g / 500, gen_random_uuid(), 'Bulk', '{}', '{}'
          FROM generate_series(0, 19999) g`),
    );

    expect(statuses).toEqual(Array(16).fill('ok'));
    const probes = plans.filter((p) => /es\.events|es\.streams/.test(p));
    expect(probes.length).toBeGreaterThan(0);
    expect(probes.filter((p) => /Seq Scan on (events|streams)/.test(p))).toEqual([]);
  });

  it('checks the data keys it carries by primary-key probes, not by reading every stored key', async () => {
    const { statuses, plans } = await plansAfterGrowth(true, () =>
      pool.query(`
        INSERT INTO keys.user_data_keys (user_id, kid, wrapped)
        SELECT 'bulk-writer-' || g, gen_random_uuid(), '\\x00' FROM generate_series(0, 19999) g`),
    );

    expect(statuses).toEqual(Array(16).fill('ok'));
    const scans = scansOf(plans, /user_data_keys|erased_users/);
    // The key is stored (user_data_keys), checked against tombstones and then against what is stored.
    expect(scans.length).toBeGreaterThanOrEqual(2);
    expect(
      scans.filter((s) => !/Index (Only )?Scan using \w+_pkey .*\| Index Cond: \(user_id =/.test(s)),
    ).toEqual([]);
  });
});
