import { randomUUID } from 'node:crypto';
import type { ChatEvent } from '@chat/events';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjector } from '../src/index.js';
import { appendEvent, createHarness, type Harness, silentLogger, waitForCheckpoint } from './harness.js';

// A live batch is a handful of small statements; planning them cost more Postgres CPU than running
// them. The projector sends them as prepared statements on generic plans, planned once per connection
// — and kept from sequential scans, since a generic plan made on small tables is kept as they grow.

let h: Harness;
let pool: pg.Pool;

beforeAll(async () => {
  h = await createHarness('prepared');
  // No idle timeout: a connection closed before the checks would take its prepared statements along.
  pool = new pg.Pool({ connectionString: h.database.url, max: 3, idleTimeoutMillis: 0 });
});
afterAll(async () => {
  await pool.end();
  await h.close();
});

const append = (by: string, event: ChatEvent) => appendEvent(h.store, by, event);

/** Every prepared statement of every connection of `pool` (all idle: each is checked out once). */
const preparedStatements = async () => {
  const clients = await Promise.all(Array.from({ length: pool.totalCount }, () => pool.connect()));
  try {
    const perClient = await Promise.all(
      clients.map(
        async (c) =>
          (
            await c.query<{ statement: string; generic_plans: string; custom_plans: string }>(
              'SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements',
            )
          ).rows,
      ),
    );
    return perClient.flat();
  } finally {
    for (const c of clients) c.release();
  }
};

/** The plan each connection keeps for the batches' state load (its generic plan, as the batches use it). */
const statePlans = async () => {
  const clients = await Promise.all(Array.from({ length: pool.totalCount }, () => pool.connect()));
  try {
    const plans: string[] = [];
    for (const c of clients) {
      await c.query('SET plan_cache_mode = force_generic_plan');
      const { rows } = await c.query<{ name: string }>(
        `SELECT name FROM pg_prepared_statements WHERE statement LIKE '%json_agg%'`,
      );
      for (const { name } of rows) {
        const plan = await c.query<{ 'QUERY PLAN': string }>(`EXPLAIN EXECUTE "${name}"('{}', '{}', '{}')`);
        plans.push(plan.rows.map((r) => r['QUERY PLAN']).join('\n'));
      }
      await c.query('RESET plan_cache_mode');
    }
    return plans;
  } finally {
    for (const c of clients) c.release();
  }
};

describe('the projector’s live batches', () => {
  it('run on prepared statements, planned once per connection, that reach their rows by key as tables grow', async () => {
    const stop = new AbortController();
    const running = createProjector({ store: h.store, pool, logger: silentLogger }).run(stop.signal);
    const c = randomUUID();
    let last = await append('alice', {
      type: 'ConversationStarted',
      data: { conversationId: c, kind: 'group', title: 't', createdBy: 'alice', members: ['alice', 'bob'] },
    });
    await waitForCheckpoint(h.db, last);
    // The plans are made now, on nearly empty tables; then the tables grow (no ANALYZE invalidates them).
    await h.pool.query(
      `INSERT INTO read_models.members (conversation_id, user_id, active, joined_seq, read_seq)
       SELECT 'other-' || (i % 500), 'user-' || i, true, 0, 0 FROM generate_series(1, 20000) i`,
    );
    // One message per batch: the projector commits each before the next is appended.
    const batches = 20;
    for (let i = 0; i < batches; i++) {
      last = await append('alice', {
        type: 'MessageSent',
        data: {
          conversationId: c,
          messageId: randomUUID(),
          senderId: 'alice',
          body: `m${i}`,
          replyTo: null,
          sentAt: '2026-01-01T00:00:00.000Z',
        },
      });
      await waitForCheckpoint(h.db, last);
    }
    stop.abort();
    await running;

    const statements = (await preparedStatements()).filter((s) => /read_models/.test(s.statement));
    const load = statements.filter((s) => /json_agg/.test(s.statement));
    const write = statements.filter((s) => /^\s*WITH/.test(s.statement) && /INSERT INTO/.test(s.statement));
    expect(load.length).toBeGreaterThan(0);
    expect(write.length).toBeGreaterThan(0);
    // Executions of the state load: one per batch, on whichever connection ran it.
    const runs = (rows: typeof statements) =>
      rows.reduce((n, s) => n + Number(s.generic_plans) + Number(s.custom_plans), 0);
    expect(runs(load)).toBeGreaterThanOrEqual(batches);
    // Planned once per connection (a generic plan), not once per batch: left to choose, PostgreSQL
    // planned the state load for every execution (a custom plan for the actual arrays looks cheaper).
    for (const s of [...load, ...write]) expect(Number(s.custom_plans)).toBe(0);
    expect(load.reduce((n, s) => n + Number(s.generic_plans), 0)).toBeGreaterThanOrEqual(batches);
    // Made while the tables were nearly empty, the plans must still reach members by key now that the
    // table holds 20,000 rows (unconstrained, Postgres kept a hash join over a sequential scan).
    const plans = await statePlans();
    expect(plans.length).toBeGreaterThan(0);
    for (const plan of plans) {
      expect(plan).toContain('members_pkey');
      expect(plan).not.toMatch(/Seq Scan on members|Hash Join/);
    }
  });
});
