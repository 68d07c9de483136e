import { randomUUID } from 'node:crypto';
import type { ChatEvent } from '@chat/events';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProjector } from '../src/index.js';
import { appendEvent, createHarness, type Harness, silentLogger, waitForCheckpoint } from './harness.js';

// A live batch is a handful of small statements; planning them cost more Postgres CPU than running
// them. The projector sends them as prepared statements, which Postgres plans once per connection.

let h: Harness;
let pool: pg.Pool;

beforeAll(async () => {
  h = await createHarness('prepared');
  pool = new pg.Pool({ connectionString: h.database.url, max: 3 });
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

describe('the projector’s live batches', () => {
  it('run on prepared statements that Postgres stops planning after their first executions', async () => {
    const stop = new AbortController();
    const running = createProjector({ store: h.store, pool, logger: silentLogger }).run(stop.signal);
    const c = randomUUID();
    let last = await append('alice', {
      type: 'ConversationStarted',
      data: { conversationId: c, kind: 'group', title: 't', createdBy: 'alice', members: ['alice', 'bob'] },
    });
    await waitForCheckpoint(h.db, last);
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
    // PostgreSQL plans a prepared statement for its first five executions, then reuses a generic plan
    // when that costs no more: at most 5 plans per statement per connection, not one per batch.
    console.log(
      statements.map((s) => `${s.generic_plans}/${s.custom_plans} ${s.statement.slice(0, 300)}`).join('\n'),
    );
    for (const s of [...load, ...write]) expect(Number(s.custom_plans)).toBeLessThanOrEqual(5);
    expect(load.reduce((n, s) => n + Number(s.generic_plans), 0)).toBeGreaterThan(0);
  });
});
